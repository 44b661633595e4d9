// SPDX-License-Identifier: MIT
/*
 * The platform devices' saved state (vm/vm_state.h) on bare VMs, no KVM:
 * a device loaded from another's state answers the guest exactly as the
 * original would (compared access by access), and a hostile blob is
 * refused with a message naming the device, with nothing applied.
 * The UART's layout is spelled out here (struct uart_blob) so that the
 * tests can forge blobs field by field.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "devices/devices.h"
#include "devices_state_util.h"
#include "harness.h"

#define BASE COM1_PORT
#define UART "uart@0x3f8"
#define RBR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static void outb(struct vm *vm, unsigned reg, uint8_t v)
{
	bus_access(&vm->pio_bus, 0, BASE + reg, &v, 1, true);
}

static uint8_t inb(struct vm *vm, unsigned reg)
{
	uint8_t v = 0;

	bus_access(&vm->pio_bus, 0, BASE + reg, &v, 1, false);
	return v;
}

static int make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	return 0;
}

static void close_pipe(int p[2])
{
	close(p[0]);
	close(p[1]);
}

/* The UART's layout, version 1, with raw bytes for the flags so that a
 * test can put a 2 there. */
struct uart_blob {
	uint32_t version;
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr, dll, dlm, thr;
	uint32_t count;
	uint8_t rx[512];
	uint8_t line;
};

static bool parse_uart(const struct state_buf *b, struct uart_blob *u)
{
	struct state_reader r;

	memset(u, 0, sizeof(*u));
	state_reader_init(&r, b->data, b->len);
	state_get_u32(&r, &u->version);
	state_get_bytes(&r, &u->ier, 10);	/* ier .. thr, in order */
	state_get_u32(&r, &u->count);
	if (u->count > sizeof(u->rx))
		return false;
	state_get_bytes(&r, u->rx, u->count);
	state_get_u8(&r, &u->line);
	return !state_reader_error(&r) && !state_reader_left(&r);
}

static void put_uart(struct state_buf *b, const struct uart_blob *u)
{
	state_buf_init(b);
	state_put_u32(b, u->version);
	state_put_bytes(b, &u->ier, 10);
	state_put_u32(b, u->count);
	state_put_bytes(b, u->rx,
			u->count < sizeof(u->rx) ? u->count : sizeof(u->rx));
	state_put_u8(b, u->line);
}

static unsigned saved_rx_count(struct vm *vm)
{
	struct uart_blob u;
	struct state_buf b;

	if (dev_save(vm, UART, &b))
		return 0;
	if (!parse_uart(&b, &u))
		u.count = 0;
	state_buf_release(&b);
	return u.count;
}

/* What a driver does next, whatever it was doing: each read's value on
 * the copy must be the original's.  Writes go to both. */
struct step {
	uint8_t reg;
	bool write;
	uint8_t val;
};

static const struct step next_accesses[] = {
	{ IIR }, { LSR }, { RBR }, { RBR }, { IIR }, { LSR }, { RBR },
	{ RBR }, { RBR }, { IIR }, { IIR }, { MSR }, { IIR }, { IIR },
	{ LCR }, { MCR }, { SCR }, { IER }, { MSR },
	{ LCR, true, 0x83 }, { RBR }, { IER }, { LCR, true, 0x03 },
	{ RBR, true, 'x' }, { IIR }, { LSR }, { IIR }, { RBR }, { LSR },
	{ FCR, true, 0x01 }, { IIR }, { IER, true, 0x00 }, { IIR },
};

#define NSTEPS (sizeof(next_accesses) / sizeof(next_accesses[0]))

/* Runs next_accesses on both; @got gets the original's reads. */
static bool same_next_accesses(struct vm *orig, struct vm *copy,
			       uint8_t got[NSTEPS])
{
	for (unsigned i = 0; i < NSTEPS; i++) {
		const struct step *s = &next_accesses[i];
		uint8_t a, b;

		got[i] = 0;
		if (s->write) {
			outb(orig, s->reg, s->val);
			outb(copy, s->reg, s->val);
			continue;
		}
		a = inb(orig, s->reg);
		b = inb(copy, s->reg);
		got[i] = a;
		if (a != b) {
			harness_fail(__FILE__, __LINE__,
				     "access %u (reg %u): %#x on the original, %#x on the copy",
				     i, s->reg, a, b);
			return false;
		}
	}
	return true;
}

/* @orig's state loaded into a fresh UART on @copy (created here). */
static bool copy_uart(struct vm *orig, struct vm *copy, int out_fd)
{
	struct errmsg err = { { 0 } };
	struct state_buf b;
	int ret;

	vm_init_bare(copy);
	if (uart16550_create(copy, BASE, COM1_IRQ, out_fd, -1))
		return false;
	if (vm_state_quiesce_all(orig, &err))
		return false;
	ret = dev_save(orig, UART, &b);
	vm_state_unquiesce_all(orig);
	if (ret)
		return false;
	ret = dev_load(copy, UART, b.data, b.len, &err);
	state_buf_release(&b);
	return ret == 0;
}

TEST(devices_state_names_uart_fw_cfg_i8042_acpi)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, 0x3f8, 4, out[1], -1), 0);
	CHECK_EQ(uart16550_create(&vm, 0x2f8, 3, out[1], -1), 0);
	CHECK_EQ(fw_cfg_create(&vm), 0);
	CHECK_EQ(i8042_create(&vm), 0);
	CHECK_EQ(vm_state_count(&vm), 4);
	/* the ones without state register nothing */
	CHECK_EQ(acpi_sleep_create(&vm), 0);
	CHECK_EQ(debug_exit_create(&vm, DEBUG_EXIT_PORT), 0);
	CHECK_EQ(ucall_port_create(&vm), 0);
	CHECK_EQ(vm_state_count(&vm), 4);
	CHECK(vm_state_find(&vm, "uart@0x3f8") != NULL);
	CHECK(vm_state_find(&vm, "uart@0x2f8") != NULL);
	CHECK(vm_state_find(&vm, "fw_cfg") != NULL);
	CHECK(vm_state_find(&vm, "i8042") != NULL);
	/* only the UART has a thread to stop */
	CHECK(vm_state_find(&vm, UART)->ops->quiesce != NULL);
	CHECK(vm_state_find(&vm, "fw_cfg")->ops->quiesce == NULL);
	CHECK(vm_state_find(&vm, "i8042")->ops->quiesce == NULL);
	vm_destroy(&vm);
	close_pipe(out);
}

/* Programmed like a driver, input from in_fd in the FIFO, THRE and
 * modem status interrupts pending behind the receive timeout. */
TEST(devices_state_uart_driver_continues)
{
	struct vm orig, copy;
	uint8_t got[NSTEPS];
	int a_out[2], b_out[2], in[2];
	char c;

	CHECK(make_pipe(a_out) == 0);
	CHECK(make_pipe(b_out) == 0);
	CHECK(pipe2(in, O_CLOEXEC) == 0);
	vm_init_bare(&orig);
	CHECK_EQ(uart16550_create(&orig, BASE, COM1_IRQ, a_out[1], in[0]), 0);
	outb(&orig, LCR, 0x83);
	outb(&orig, RBR, 0x01);		/* DLL: 115200 baud */
	outb(&orig, IER, 0x00);		/* DLM */
	outb(&orig, LCR, 0x1b);		/* 8E1 */
	outb(&orig, FCR, 0x87);	/* FIFOs on, cleared, trigger 8 */
	outb(&orig, MCR, 0x10);		/* a loopback test ... */
	for (int i = 0; i < 14; i++)	/* ... moves the FIFO's head, so */
		outb(&orig, RBR, (uint8_t)i);	/* that "hello" wraps */
	for (int i = 0; i < 14; i++)
		CHECK_EQ(inb(&orig, RBR), i);
	outb(&orig, MCR, 0x0b);		/* ... and leaves MSR deltas */
	outb(&orig, IER, 0x0f);		/* raises THRE */
	outb(&orig, SCR, 0x5a);
	CHECK_EQ(write(in[1], "hello", 5), 5);
	for (int i = 0; i < 2000 && saved_rx_count(&orig) < 5; i++)
		usleep(1000);
	CHECK_EQ(saved_rx_count(&orig), 5);

	CHECK(copy_uart(&orig, &copy, b_out[1]));
	CHECK(same_next_accesses(&orig, &copy, got));
	CHECK_EQ(got[0], 0xcc);		/* receive timeout: 5 < 8 */
	CHECK_EQ(got[1], 0x61);		/* THRE TEMT DR */
	CHECK_EQ(got[2], 'h');
	CHECK_EQ(got[8], 'o');
	CHECK_EQ(got[9], 0xc2);		/* then the latched THRE */
	CHECK_EQ(got[10], 0xc0);	/* then modem status */
	CHECK_EQ(got[12], 0xc1);
	CHECK_EQ(got[14], 0x1b);
	CHECK_EQ(got[16], 0x5a);
	CHECK_EQ(got[20], 0x01);	/* the divisor came along */
	/* output goes to each VM's own console: config, not state */
	CHECK_EQ(read(a_out[0], &c, 1), 1);
	CHECK_EQ(read(b_out[0], &c, 1), 1);
	CHECK_EQ(c, 'x');
	CHECK(same_state(&orig, &copy, UART));
	vm_destroy(&orig);
	vm_destroy(&copy);
	close_pipe(a_out);
	close_pipe(b_out);
	close_pipe(in);
}

/* FIFOs off: one byte held after an overrun, line status pending. */
TEST(devices_state_uart_overrun_without_fifo)
{
	struct vm orig, copy;
	uint8_t got[NSTEPS];
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&orig);
	CHECK_EQ(uart16550_create(&orig, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&orig, MCR, 0x10);
	outb(&orig, IER, 0x0d);
	outb(&orig, RBR, 1);
	outb(&orig, RBR, 2);		/* overwrites 1, sets OE */
	outb(&orig, MCR, 0x03);
	CHECK(copy_uart(&orig, &copy, out[1]));
	CHECK(same_next_accesses(&orig, &copy, got));
	CHECK_EQ(got[0], 0x06);		/* line status, no FIFO bits */
	CHECK_EQ(got[1], 0x63);		/* OE DR */
	CHECK_EQ(got[2], 2);
	CHECK(same_state(&orig, &copy, UART));
	vm_destroy(&orig);
	vm_destroy(&copy);
	close_pipe(out);
}

/* Quiesced, the reader holds input back; unquiesced, it delivers it. */
TEST(devices_state_uart_quiesce_holds_input)
{
	struct errmsg err = { { 0 } };
	struct state_buf before, after;
	struct vm vm;
	int out[2], in[2];

	CHECK(make_pipe(out) == 0);
	CHECK(pipe2(in, O_CLOEXEC) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], in[0]), 0);
	outb(&vm, FCR, 0x01);
	CHECK_EQ(vm_state_quiesce_all(&vm, &err), 0);
	CHECK_EQ(dev_save(&vm, UART, &before), 0);
	CHECK_EQ(write(in[1], "xyz", 3), 3);
	usleep(50000);
	CHECK_EQ(dev_save(&vm, UART, &after), 0);
	CHECK(same_bytes(&before, &after));
	state_buf_release(&before);
	state_buf_release(&after);
	vm_state_unquiesce_all(&vm);
	for (int i = 0; i < 2000 && saved_rx_count(&vm) < 3; i++)
		usleep(1000);
	CHECK_EQ(inb(&vm, RBR), 'x');

	/* teardown with input held back by a quiesce does not hang */
	CHECK_EQ(vm_state_quiesce_all(&vm, &err), 0);
	CHECK_EQ(write(in[1], "more", 4), 4);
	usleep(10000);
	vm_destroy(&vm);
	close_pipe(out);
	close_pipe(in);
}

/* A blob forged from @ok with @mutate applied is refused. */
static bool uart_refuses(struct vm *vm, const struct uart_blob *ok,
			 void (*mutate)(struct uart_blob *), const char *want)
{
	struct uart_blob u = *ok;
	struct state_buf b;
	bool refused;

	mutate(&u);
	put_uart(&b, &u);
	refused = load_refused(vm, UART, b.data, b.len, -EBADMSG, want);
	state_buf_release(&b);
	return refused;
}

static void count_300(struct uart_blob *u) { u->count = 300; }
static void count_17(struct uart_blob *u) { u->count = 17; }
static void fifo_off_2(struct uart_blob *u) { u->fcr = 0; u->count = 2; }
static void thr_2(struct uart_blob *u) { u->thr = 2; }
static void line_2(struct uart_blob *u) { u->line = 2; }
static void line_wrong(struct uart_blob *u) { u->line ^= 1; }
static void ier_bit4(struct uart_blob *u) { u->ier |= 0x10; }
static void mcr_bit5(struct uart_blob *u) { u->mcr |= 0x20; }
static void fcr_dma(struct uart_blob *u) { u->fcr |= 0x08; }
static void fcr_trigger_only(struct uart_blob *u) { u->fcr = 0x80; }
static void lsr_dr(struct uart_blob *u) { u->lsr |= 0x01; }
static void msr_status(struct uart_blob *u) { u->msr ^= 0x10; }

TEST(devices_state_uart_hostile_blobs)
{
	struct vm src, vm;
	struct uart_blob ok;
	struct state_buf b, again;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&src);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&src, BASE, COM1_IRQ, out[1], -1), 0);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	/* the source: FIFO with 3 bytes, THRE latched */
	outb(&src, FCR, 0xc1);
	outb(&src, MCR, 0x10);
	outb(&src, IER, 0x03);
	outb(&src, RBR, 'a');
	outb(&src, RBR, 'b');
	outb(&src, RBR, 'c');
	/* the target has a state of its own, which must survive */
	outb(&vm, SCR, 0x77);
	outb(&vm, LCR, 0x03);
	outb(&vm, MCR, 0x10);
	outb(&vm, RBR, 'z');
	outb(&vm, MCR, 0x00);

	CHECK_EQ(dev_save(&src, UART, &b), 0);
	CHECK(parse_uart(&b, &ok));
	CHECK_EQ(ok.count, 3);
	/* the forger writes what save does */
	put_uart(&again, &ok);
	CHECK(same_bytes(&b, &again));
	state_buf_release(&again);

	CHECK(truncations_refused(&vm, UART, &b));
	CHECK(version_refused(&vm, UART, &b));
	CHECK(uart_refuses(&vm, &ok, count_300, "rx fifo count 300 over 16"));
	CHECK(uart_refuses(&vm, &ok, count_17, "rx fifo count 17 over 16"));
	CHECK(uart_refuses(&vm, &ok, fifo_off_2, "rx fifo count 2 over 1"));
	CHECK(uart_refuses(&vm, &ok, thr_2, "THRE interrupt latch is 2"));
	CHECK(uart_refuses(&vm, &ok, line_2, "irq line is 2"));
	CHECK(uart_refuses(&vm, &ok, line_wrong, "irq line 0 but"));
	CHECK(uart_refuses(&vm, &ok, ier_bit4, "ier 0x13"));
	CHECK(uart_refuses(&vm, &ok, mcr_bit5, "mcr 0x30"));
	CHECK(uart_refuses(&vm, &ok, fcr_dma, "fcr 0xc9"));
	CHECK(uart_refuses(&vm, &ok, fcr_trigger_only, "fcr 0x80"));
	CHECK(uart_refuses(&vm, &ok, lsr_dr, "lsr 0x1"));
	CHECK(uart_refuses(&vm, &ok, msr_status, "does not match mcr"));

	/* and the good one loads */
	CHECK_EQ(dev_load(&vm, UART, b.data, b.len, NULL), 0);
	CHECK(same_state(&src, &vm, UART));
	state_buf_release(&b);
	vm_destroy(&src);
	vm_destroy(&vm);
	close_pipe(out);
}
