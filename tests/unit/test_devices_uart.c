// SPDX-License-Identifier: MIT
/* The 16550A UART driven through the port bus of a bare VM (no KVM). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/devices.h"
#include "harness.h"

#define BASE COM1_PORT
#define THR 0
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

/* The pipe's read end, non-blocking, so tests can check for "nothing". */
static ssize_t drain(int fd, char *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? 0 : n;
}

static int make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Polls LSR until DR is set or about two seconds passed. */
static bool wait_dr(struct vm *vm)
{
	for (int i = 0; i < 2000; i++) {
		if (inb(vm, LSR) & 0x01)
			return true;
		usleep(1000);
	}
	return false;
}

TEST(uart_scratch_and_ier_mask)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, SCR, 0x5a);
	CHECK_EQ(inb(&vm, SCR), 0x5a);
	outb(&vm, SCR, 0xa5);
	CHECK_EQ(inb(&vm, SCR), 0xa5);
	/* only IER bits 0-3 exist (Linux: not an XScale UART) */
	outb(&vm, IER, 0xff);
	CHECK_EQ(inb(&vm, IER), 0x0f);
	outb(&vm, IER, 0);
	CHECK_EQ(inb(&vm, IER), 0);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_dlab_divisor_latch)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, IER, 0x05);
	outb(&vm, LCR, 0x83);	/* DLAB, 8N1 */
	outb(&vm, THR, 0x01);	/* DLL */
	outb(&vm, IER, 0x02);	/* DLM */
	CHECK_EQ(inb(&vm, THR), 0x01);
	CHECK_EQ(inb(&vm, IER), 0x02);
	CHECK_EQ(inb(&vm, LCR), 0x83);
	outb(&vm, LCR, 0x03);
	/* the divisor writes touched neither IER nor the output */
	CHECK_EQ(inb(&vm, IER), 0x05);
	char buf[8];
	CHECK_EQ(drain(out[0], buf, sizeof(buf)), 0);
	outb(&vm, LCR, 0x83);
	CHECK_EQ(inb(&vm, THR), 0x01);
	CHECK_EQ(inb(&vm, IER), 0x02);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_transmit_to_out_fd)
{
	struct vm vm;
	char buf[16];
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	CHECK_EQ(inb(&vm, LSR), 0x60);	/* THRE | TEMT, no data */
	for (const char *s = "hello"; *s; s++) {
		outb(&vm, THR, (uint8_t)*s);
		CHECK_EQ(inb(&vm, LSR), 0x60);
	}
	CHECK_EQ(drain(out[0], buf, sizeof(buf)), 5);
	CHECK(memcmp(buf, "hello", 5) == 0);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_wide_access_splits_into_bytes)
{
	struct vm vm;
	uint8_t d[2] = { 0x03, 0x0b };	/* LCR = 3, MCR = 0x0b */
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	CHECK_EQ(bus_access(&vm.pio_bus, 0, BASE + LCR, d, 2, true), 0);
	CHECK_EQ(inb(&vm, LCR), 0x03);
	CHECK_EQ(inb(&vm, MCR), 0x0b);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_loopback)
{
	struct vm vm;
	char buf[8];
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	/* not in loopback: a present, ready terminal */
	CHECK_EQ(inb(&vm, MSR) & 0xf0, 0xb0);
	/* Linux's probe: loop | OUT2 | RTS must read back DCD | CTS */
	outb(&vm, MCR, 0x1a);
	CHECK_EQ(inb(&vm, MSR) & 0xf0, 0x90);
	outb(&vm, MCR, 0x1f);
	CHECK_EQ(inb(&vm, MSR) & 0xf0, 0xf0);
	outb(&vm, THR, 'x');
	CHECK_EQ(inb(&vm, LSR) & 0x01, 0x01);
	CHECK_EQ(inb(&vm, THR), 'x');
	CHECK_EQ(inb(&vm, LSR) & 0x01, 0);
	CHECK_EQ(drain(out[0], buf, sizeof(buf)), 0);	/* never sent */
	outb(&vm, MCR, 0x0b);
	outb(&vm, THR, 'y');
	CHECK_EQ(inb(&vm, LSR) & 0x01, 0);
	CHECK_EQ(drain(out[0], buf, sizeof(buf)), 1);
	CHECK_EQ(buf[0], 'y');
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_msr_deltas)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, MCR, 0x10);	/* loopback, all outputs low */
	/* DCD, DSR and CTS dropped */
	CHECK_EQ(inb(&vm, MSR), 0x0b);
	CHECK_EQ(inb(&vm, MSR), 0x00);	/* deltas clear on read */
	outb(&vm, MCR, 0x14);	/* OUT1 -> RI rises: no TERI */
	CHECK_EQ(inb(&vm, MSR), 0x40);
	outb(&vm, IER, 0x08);
	outb(&vm, MCR, 0x10);	/* RI falls: TERI, modem status irq */
	CHECK_EQ(inb(&vm, IIR), 0x00);
	CHECK_EQ(inb(&vm, MSR), 0x04);
	CHECK_EQ(inb(&vm, IIR), 0x01);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

/* The register checks of Linux's 8250 autoconfig, in its order. */
TEST(uart_linux_probe_sees_16550a)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, IER, 0);
	CHECK_EQ(inb(&vm, IER) & 0x0f, 0);
	outb(&vm, IER, 0x0f);
	CHECK_EQ(inb(&vm, IER) & 0x0f, 0x0f);
	outb(&vm, IER, 0);
	outb(&vm, MCR, 0x1a);
	CHECK_EQ(inb(&vm, MSR) & 0xf0, 0x90);
	outb(&vm, MCR, 0);
	outb(&vm, FCR, 0x01);
	CHECK_EQ(inb(&vm, IIR) >> 6, 3);	/* 16550A */
	/* no EFR behind LCR 0x80 / 0xbf: IIR shows there, nonzero */
	outb(&vm, LCR, 0x80);
	CHECK(inb(&vm, IIR) != 0);
	outb(&vm, LCR, 0xbf);
	CHECK(inb(&vm, IIR) != 0);
	outb(&vm, LCR, 0);
	/* not a 16750: IIR bit 5 stays clear */
	outb(&vm, FCR, 0x21);
	CHECK_EQ(inb(&vm, IIR) & 0xe0, 0xc0);
	outb(&vm, LCR, 0x80);
	outb(&vm, FCR, 0x21);
	CHECK_EQ(inb(&vm, IIR) & 0xe0, 0xc0);
	outb(&vm, FCR, 0);
	outb(&vm, LCR, 0);
	CHECK_EQ(inb(&vm, IIR), 0x01);	/* FIFOs off: no FIFO bits */
	CHECK(inb(&vm, LSR) != 0xff);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_thre_interrupt)
{
	struct vm vm;
	char buf[4];
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, FCR, 0x01);
	CHECK_EQ(inb(&vm, IIR), 0xc1);
	outb(&vm, IER, 0x02);
	CHECK_EQ(inb(&vm, IIR), 0xc2);	/* raised by enabling ETBEI */
	CHECK_EQ(inb(&vm, IIR), 0xc1);	/* cleared by reading it */
	/* Linux's THRE test: disabling and re-enabling raises it again */
	outb(&vm, IER, 0);
	outb(&vm, IER, 0x02);
	CHECK_EQ(inb(&vm, IIR), 0xc2);
	CHECK_EQ(inb(&vm, IIR), 0xc1);
	/* a transmitted byte leaves THR empty again */
	outb(&vm, THR, 'z');
	CHECK_EQ(inb(&vm, IIR), 0xc2);
	CHECK_EQ(drain(out[0], buf, sizeof(buf)), 1);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_rx_interrupt_priorities)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, MCR, 0x10);
	inb(&vm, MSR);
	outb(&vm, FCR, 0x41);	/* FIFO, trigger level 4 */
	outb(&vm, IER, 0x07);
	CHECK_EQ(inb(&vm, IIR), 0xc2);	/* THRE from enabling ETBEI */
	outb(&vm, THR, 'a');
	/* below the trigger level: reported as character timeout, which
	 * takes priority over THRE */
	CHECK_EQ(inb(&vm, IIR), 0xcc);
	outb(&vm, THR, 'b');
	outb(&vm, THR, 'c');
	outb(&vm, THR, 'd');
	CHECK_EQ(inb(&vm, IIR), 0xc4);
	CHECK_EQ(inb(&vm, THR), 'a');
	CHECK_EQ(inb(&vm, IIR), 0xcc);
	CHECK_EQ(inb(&vm, THR), 'b');
	CHECK_EQ(inb(&vm, THR), 'c');
	CHECK_EQ(inb(&vm, THR), 'd');
	CHECK_EQ(inb(&vm, IIR), 0xc2);	/* THRE again */
	CHECK_EQ(inb(&vm, IIR), 0xc1);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_overrun_and_fifo_clear)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, MCR, 0x10);
	outb(&vm, FCR, 0x01);
	outb(&vm, IER, 0x04);
	for (int i = 0; i < 17; i++)
		outb(&vm, THR, (uint8_t)i);
	CHECK_EQ(inb(&vm, IIR), 0xc6);	/* line status: overrun */
	CHECK_EQ(inb(&vm, LSR), 0x63);	/* THRE TEMT OE DR */
	CHECK_EQ(inb(&vm, LSR), 0x61);	/* OE cleared by the read */
	CHECK_EQ(inb(&vm, IIR), 0xc1);
	CHECK_EQ(inb(&vm, THR), 0);	/* the FIFO kept the first 16 */
	outb(&vm, FCR, 0x03);		/* clear RX */
	CHECK_EQ(inb(&vm, LSR) & 0x01, 0);
	/* without FIFOs an overrun overwrites the holding register */
	outb(&vm, FCR, 0x00);
	outb(&vm, THR, 1);
	outb(&vm, THR, 2);
	CHECK_EQ(inb(&vm, LSR), 0x63);
	CHECK_EQ(inb(&vm, THR), 2);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}

TEST(uart_receive_from_in_fd)
{
	struct vm vm;
	int out[2], in[2];

	CHECK(make_pipe(out) == 0);
	CHECK(pipe2(in, O_CLOEXEC) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], in[0]), 0);
	outb(&vm, FCR, 0x01);
	CHECK_EQ(write(in[1], "hi", 2), 2);
	CHECK(wait_dr(&vm));
	CHECK_EQ(inb(&vm, THR), 'h');
	CHECK(wait_dr(&vm));
	CHECK_EQ(inb(&vm, THR), 'i');
	CHECK_EQ(inb(&vm, LSR) & 0x01, 0);
	vm_destroy(&vm);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
}

/* More input than the FIFO holds arrives complete and in order. */
TEST(uart_receive_backpressure)
{
	struct vm vm;
	char sent[100];
	int out[2], in[2], i;

	CHECK(make_pipe(out) == 0);
	CHECK(pipe2(in, O_CLOEXEC) == 0);
	for (i = 0; i < (int)sizeof(sent); i++)
		sent[i] = (char)(i * 7 + 1);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], in[0]), 0);
	outb(&vm, FCR, 0x01);
	CHECK_EQ(write(in[1], sent, sizeof(sent)), (ssize_t)sizeof(sent));
	usleep(20000);	/* let the reader fill the FIFO and stall */
	for (i = 0; i < (int)sizeof(sent); i++) {
		CHECK(wait_dr(&vm));
		CHECK_EQ(inb(&vm, LSR) & 0x02, 0);	/* no overrun */
		CHECK_EQ((uint8_t)inb(&vm, THR), (uint8_t)sent[i]);
	}
	vm_destroy(&vm);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
}

/* Teardown with the reader blocked in poll, or waiting for FIFO room. */
TEST(uart_teardown_does_not_hang)
{
	struct vm vm;
	int out[2], in[2];

	CHECK(make_pipe(out) == 0);
	CHECK(pipe2(in, O_CLOEXEC) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], in[0]), 0);
	vm_destroy(&vm);

	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], in[0]), 0);
	CHECK_EQ(write(in[1], "0123456789abcdefghijklmnop", 26), 26);
	CHECK(wait_dr(&vm));
	usleep(10000);
	vm_destroy(&vm);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
}

/* A dead console (reader gone: EPIPE) must not end the VM; the process
 * ignores SIGPIPE, as the CLI does. */
TEST(uart_write_error_is_survived)
{
	struct vm vm;
	int out[2];

	signal(SIGPIPE, SIG_IGN);
	CHECK(pipe2(out, O_CLOEXEC) == 0);
	close(out[0]);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	outb(&vm, THR, 'a');
	outb(&vm, THR, 'b');
	CHECK_EQ(inb(&vm, LSR), 0x60);
	vm_destroy(&vm);
	close(out[1]);
}

TEST(uart_create_errors)
{
	struct vm vm;
	int out[2];

	CHECK(make_pipe(out) == 0);
	vm_init_bare(&vm);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, -1, -1), -EBADF);
	CHECK_EQ(uart16550_create(&vm, BASE, COM1_IRQ, out[1], -1), 0);
	/* overlapping range: refused, and vm_destroy frees both */
	CHECK_EQ(uart16550_create(&vm, BASE + 4, COM1_IRQ, out[1], out[0]),
		 -EEXIST);
	vm_destroy(&vm);
	close(out[0]);
	close(out[1]);
}
