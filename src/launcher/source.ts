/**
 * The C source of `tfc-vmm-exec`, the launcher every VMM process starts
 * through: it lowers its own CPU priority and/or disables transparent huge
 * pages for itself, then execs the VMM in place (same pid), so both settings
 * hold for the VMM and every thread it starts. Node cannot do either for a
 * child before it runs: `PR_SET_THP_DISABLE` applies only to the calling
 * process (and what it execs or forks), and a priority set after spawn
 * misses the threads the VMM already made.
 *
 * Kept as a string, not a .c file beside the sources, so it travels with
 * the compiled or bundled JavaScript and is found without a path relative
 * to this module (build.ts compiles it on first use, cached by its hash).
 *
 * Usage: `tfc-vmm-exec [--nice N] [--no-thp] -- /absolute/program [args...]`.
 * Exit 126 (message on stderr) when the arguments are wrong or a setting
 * cannot be applied, 127 when the program does not exist, else whatever
 * the program exits with (it is the program once exec succeeds).
 */
export const VMM_EXEC_SOURCE = String.raw`/* tfc-vmm-exec: start a VMM at a lower CPU priority and/or without
 * transparent huge pages, in place (execv keeps the pid). Generated from
 * src/launcher/source.ts of terraphim-firecracker; no shell, no PATH search. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif

static int fail(int code, const char *what, const char *detail) {
  fprintf(stderr, "tfc-vmm-exec: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  return code;
}

int main(int argc, char **argv) {
  long nice = -1;
  int no_thp = 0;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else if (strcmp(argv[i], "--no-thp") == 0) {
      no_thp = 1;
    } else if (strcmp(argv[i], "--nice") == 0 && i + 1 < argc) {
      char *end = NULL;
      errno = 0;
      nice = strtol(argv[++i], &end, 10);
      if (errno != 0 || end == argv[i] || *end != '\0' || nice < 0 || nice > 19) {
        return fail(126, "--nice needs an integer from 0 to 19, got", argv[i]);
      }
    } else {
      return fail(126, "unknown option (usage: tfc-vmm-exec [--nice N] [--no-thp] -- /absolute/program [args...])", argv[i]);
    }
  }
  if (i >= argc) return fail(126, "no program given after --", NULL);
  if (argv[i][0] != '/') return fail(126, "the program must be an absolute path, got", argv[i]);

  if (nice >= 0) {
    /* Never raise the priority above this process's own: an owner already
     * running at a higher nice value keeps its VMMs at least as low. */
    errno = 0;
    int current = getpriority(PRIO_PROCESS, 0);
    if (errno != 0) return fail(126, "getpriority failed", strerror(errno));
    if (nice > current && setpriority(PRIO_PROCESS, 0, (int)nice) != 0) {
      return fail(126, "setpriority failed", strerror(errno));
    }
  }
  if (no_thp && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) {
    return fail(126, "prctl(PR_SET_THP_DISABLE) failed (set vmm.qemu.thp = \"inherit\" on this kernel)", strerror(errno));
  }
  execv(argv[i], &argv[i]);
  int err = errno;
  fprintf(stderr, "tfc-vmm-exec: cannot execute %s: %s\n", argv[i], strerror(err));
  return err == ENOENT ? 127 : 126;
}
`;
