/* SPDX-License-Identifier: MIT */
/*
 * Idle waits that leave the host CPU alone: the calling CPU halts until a
 * TSC deadline, woken by the LAPIC timer (TSC-deadline mode where CPUID
 * offers it, else one-shot mode calibrated against the TSC on first use).
 * A spinning idle guest costs its host a whole CPU, which VMs sharing the
 * host would rather have.
 *
 * Ring 3, boot CPU only.  Each call enters ring 0 once per timer arm
 * (SYS_SLEEP_UNTIL); the last ~200 µs before the deadline are spun in
 * ring 3, where a syscall would cost more than it saves.  Without a
 * working LAPIC timer the whole wait is spun (said once on the UART).
 * Returns at the deadline or just after it, never before.
 */
#ifndef GUEST_SLEEP_H
#define GUEST_SLEEP_H

#include <stdint.h>

void sleep_until_tsc(uint64_t deadline);

#endif
