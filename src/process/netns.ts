/**
 * Running a program inside a network namespace: the argv prefix shared by
 * the net module (which makes the namespaces) and the VMM drivers (whose
 * processes run in them), kept here so neither has to import the other.
 */

/** Argv prefix that runs a program inside network namespace `netns` (`ip netns exec NAME PROG ...`). */
export function netnsExecPrefix(netns: string): string[] {
  return ['ip', 'netns', 'exec', netns];
}
