// SPDX-License-Identifier: MIT
/*
 * Ring-0 traps: CPU exceptions (vectors 0-31) and the int 0x80 syscall.
 *
 * A workload never expects an exception, so each one is a failure:
 * print it, report UCALL_EXCEPTION and end the guest.  A fault while
 * doing that ends the guest without reporting rather than recursing.
 * The one exception that is not a failure is a #UD on "int $0x80" from
 * ring 3, which some nested hypervisors raise instead of the software
 * interrupt: it is run as the syscall.
 */
#include <stdint.h>

#include "guest/io.h"
#include "guest/printf.h"
#include "guest/smp.h"
#include "guest/syscall.h"
#include "guest/ucall.h"

/* Layout pushed by vectors.S (lowest address first). */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;	/* pushed by the CPU */
};

#define VECTOR_UD 6

static const char *const exception_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
	"#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

static volatile uint32_t handling;

static uint64_t read_cr2(void)
{
	uint64_t cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	return cr2;
}

static void do_syscall(struct trap_frame *f)
{
	f->rax = syscall_dispatch(f->rax, f->rdi, f->rsi, f->rdx);
}

/* "int $0x80" at the faulting RIP of a ring-3 #UD.  Ring-3 code pages
 * are ours and mapped, so reading the two bytes cannot fault. */
static int is_int80_ud(const struct trap_frame *f)
{
	const uint8_t *insn = (const uint8_t *)f->rip;

	return f->vector == VECTOR_UD && (f->cs & 3) == 3 &&
	       f->rip < (4ull << 30) && insn[0] == 0xcd &&
	       insn[1] == SYSCALL_VECTOR;
}

__attribute__((noreturn)) static void fatal_exception(struct trap_frame *f)
{
	uint64_t args[4];
	char msg[UCALL_MESSAGE_LEN];
	uint32_t nested;

	args[UCALL_EXC_CR2] = read_cr2();
	asm volatile("lock xaddl %0, %1"
		     : "=r"(nested), "+m"(handling) : "0"(1u) : "memory");
	if (nested)
		guest_exit_now(GUEST_DEBUG_EXIT_FAIL);

	args[UCALL_EXC_VECTOR] = f->vector;
	args[UCALL_EXC_RIP] = f->rip;
	args[UCALL_EXC_ERROR_CODE] = f->error_code;
	snprintf(msg, sizeof(msg),
		 "exception: vector %llu (%s) on cpu %u in ring %llu: rip=0x%llx error_code=0x%llx cr2=0x%llx rsp=0x%llx rflags=0x%llx",
		 (unsigned long long)f->vector,
		 exception_names[f->vector & 31], this_cpu_apic_id(),
		 (unsigned long long)(f->cs & 3),
		 (unsigned long long)f->rip,
		 (unsigned long long)f->error_code,
		 (unsigned long long)args[UCALL_EXC_CR2],
		 (unsigned long long)f->rsp,
		 (unsigned long long)f->rflags);
	uart_printf("%s\n", msg);
	ucall_send(UCALL_EXCEPTION, NULL, 0, args, 4, msg);
	guest_done(1);
}

void trap_handler(struct trap_frame *f)
{
	if (f->vector == SYSCALL_VECTOR) {
		do_syscall(f);
		return;
	}
	if (is_int80_ud(f)) {
		do_syscall(f);
		f->rip += SYSCALL_INSN_LEN;
		return;
	}
	fatal_exception(f);
}
