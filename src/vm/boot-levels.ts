import type { BootLevel } from '../config/index.js';

/**
 * Boot optimisation levels: named presets, each a real change to the guest
 * kernel command line (and, from `sub2second`, the device/module set), each
 * adding to the one before. Their effect is measured by
 * `tfc bench boot-levels`, not assumed; docs/boot-levels.md has the
 * figures and the trade-offs.
 */
export interface BootLevelPreset {
  level: BootLevel;
  /** Kernel arguments added by this level on top of the previous one. */
  adds: readonly string[];
  /** What the added arguments change, for docs and `tfc config show`. */
  why: string;
}

/** TSC frequency the QEMU driver announces (tsc_early_khz) and HZ of the Debian cloud kernel: lpj = khz * 1000 / HZ. */
const LPJ_FOR_2GHZ_AT_HZ250 = 8_000_000;

export const BOOT_LEVEL_PRESETS: readonly BootLevelPreset[] = [
  { level: 'standard', adds: ['quiet'], why: 'no kernel log on the serial console (printing it is slow on an emulated UART)' },
  {
    level: 'fast',
    adds: [
      'loglevel=0',
      'no_timer_check',
      'cryptomgr.notests',
      'random.trust_cpu=on',
      '8250.nr_uarts=1',
      'i8042.noaux',
      'i8042.nomux',
      'i8042.nopnp',
      'i8042.dumbkbd',
    ],
    why: 'skip crypto self-tests, timer checks, probing of absent UARTs and the PS/2 controller; trust the CPU RNG for early entropy',
  },
  {
    level: 'ultrafast',
    adds: ['mitigations=off', 'nokaslr', 'nowatchdog', 'nosoftlockup', 'audit=0'],
    why: 'no CPU-vulnerability mitigations inside the guest (guest-internal only: the VMM boundary is unchanged; do not use if guest processes must be isolated from each other), no KASLR, no lockup watchdogs, no audit',
  },
  {
    level: 'sub2second',
    adds: [`lpj=${LPJ_FOR_2GHZ_AT_HZ250}`, 'rcupdate.rcu_expedited=1', 'init_on_alloc=0', 'tfc.modules=lean'],
    why: 'skip delay-loop calibration, expedite RCU grace periods, do not zero pages on allocation, and load only the agent channel modules (no block or network drivers)',
  },
];

/**
 * The kernel arguments of a level (cumulative). `instant` VMs are restored
 * from a golden snapshot; the template is cold-booted with the
 * `ultrafast` arguments (it keeps block and network drivers, which clones
 * may need).
 */
export function bootLevelArgs(level: BootLevel): string[] {
  const upTo: BootLevel = level === 'instant' ? 'ultrafast' : level;
  const out: string[] = [];
  for (const preset of BOOT_LEVEL_PRESETS) {
    out.push(...preset.adds);
    if (preset.level === upTo) return out;
  }
  throw new Error(`unknown boot level ${level}`);
}
