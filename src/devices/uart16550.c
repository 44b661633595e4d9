// SPDX-License-Identifier: MIT
/*
 * 16550A UART: eight byte-wide registers at a port base.
 *
 * Transmission is synchronous: a THR write goes straight to out_fd, so the
 * transmitter is always idle again when the write returns (LSR THRE and
 * TEMT stay set); a slow out_fd paces the writing vCPU, as a real line
 * paces its sender.  Reception is fed by a thread reading in_fd; it stops
 * reading while the receive FIFO is full (back-pressure), so no input is
 * lost to overruns.  One mutex guards the registers against the vCPU
 * threads and the reader thread.  Their saved state (snapshots and
 * migration) is in uart16550_state.c.
 *
 * Linux's 8250 driver identifies the chip by: IER bits 0-3 read back,
 * loopback MSR bits (MCR 0x1a -> MSR status 0x90), IIR bits 7:6 set with
 * FIFOs enabled, IIR bit 5 never set (not a 16750), IER bit 6 never set
 * (not an XScale) and THRE interrupts re-raised when ETBEI is enabled.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devices/devices.h"
#include "devices/uart16550_internal.h"

/* register offsets (DLAB = 0 unless noted) */
#define UART_RBR 0	/* read: receive buffer; write: THR */
#define UART_IER 1
#define UART_IIR 2	/* read: interrupt identification; write: FCR */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_NREGS 8

#define IER_ERBFI 0x01	/* received data available */
#define IER_ETBEI 0x02	/* transmitter holding register empty */
#define IER_ELSI 0x04	/* receiver line status */
#define IER_EDSSI 0x08	/* modem status */

#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_RX_TIMEOUT 0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

#define LCR_DLAB 0x80

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10

#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
/* Outside loopback the other end looks like a terminal that is present
 * and ready: carrier, data set ready, clear to send. */
#define MSR_CONNECTED (MSR_DCD | MSR_DSR | MSR_CTS)

unsigned uart_rx_capacity(const struct uart_regs *r)
{
	/* without FIFOs the receiver holds a single byte */
	return (r->fcr & FCR_ENABLE) ? UART_FIFO_LEN : 1;
}

static unsigned rx_trigger(const struct uart_regs *r)
{
	static const uint8_t levels[4] = { 1, 4, 8, 14 };

	if (!(r->fcr & FCR_ENABLE))
		return 1;
	return levels[r->fcr >> FCR_TRIGGER_SHIFT];
}

static void rx_clear(struct uart *u)
{
	u->r.rx_head = u->r.rx_count = 0;
	pthread_cond_broadcast(&u->rx_room);
}

/* A byte arrives at the receiver (from in_fd or looped back). */
static void rx_push(struct uart *u, uint8_t byte)
{
	unsigned cap = uart_rx_capacity(&u->r);

	if (u->r.rx_count >= cap) {
		u->r.lsr |= LSR_OE;
		/* a 16450 overwrites its holding register; a 16550A in FIFO
		 * mode keeps the FIFO and loses the new character */
		if (cap == 1)
			u->r.rx[u->r.rx_head] = byte;
		return;
	}
	u->r.rx[(u->r.rx_head + u->r.rx_count) % UART_FIFO_LEN] = byte;
	u->r.rx_count++;
}

static uint8_t rx_pop(struct uart *u)
{
	uint8_t byte;

	if (!u->r.rx_count)
		return 0;
	byte = u->r.rx[u->r.rx_head];
	u->r.rx_head = (u->r.rx_head + 1) % UART_FIFO_LEN;
	u->r.rx_count--;
	pthread_cond_broadcast(&u->rx_room);
	return byte;
}

uint8_t uart_pending_iid(const struct uart_regs *r)
{
	if ((r->ier & IER_ELSI) && (r->lsr & LSR_ERRORS))
		return IIR_RLSI;
	if ((r->ier & IER_ERBFI) && r->rx_count) {
		/* Below the trigger level a real chip reports a character
		 * timeout after four idle character times.  There is no
		 * line timing here, so the timeout is taken as expired at
		 * once: data never sits unannounced in the FIFO. */
		return r->rx_count >= rx_trigger(r) ? IIR_RDI : IIR_RX_TIMEOUT;
	}
	if ((r->ier & IER_ETBEI) && r->thr_ipending)
		return IIR_THRI;
	if ((r->ier & IER_EDSSI) && (r->msr & ~MSR_STATUS))
		return IIR_MSI;
	return IIR_NO_INT;
}

/*
 * Drives the ISA line to "an interrupt is pending".  The line is level
 * triggered, so it is only touched when the level changes.  OUT2 is not
 * used as a gate (as in other VMMs): guests that poll never set it and
 * guests that use interrupts do.  Failures (no irqchip in unit tests) are
 * retried at the next change of state.
 */
void uart_update_irq(struct uart *u)
{
	int level = uart_pending_iid(&u->r) != IIR_NO_INT;

	if (level == u->irq_level)
		return;
	if (vm_set_irq_line(u->vm, u->irq, level) == 0)
		u->irq_level = level;
	else
		u->irq_level = -1;
}

uint8_t uart_msr_status(uint8_t mcr)
{
	uint8_t status = 0;

	if (!(mcr & MCR_LOOP))
		return MSR_CONNECTED;
	/* loopback wires the modem outputs to the modem inputs */
	if (mcr & MCR_DTR)
		status |= MSR_DSR;
	if (mcr & MCR_RTS)
		status |= MSR_CTS;
	if (mcr & MCR_OUT1)
		status |= MSR_RI;
	if (mcr & MCR_OUT2)
		status |= MSR_DCD;
	return status;
}

/* Recomputes MSR status bits and latches the deltas. */
static void update_msr(struct uart *u)
{
	uint8_t old = u->r.msr, status = uart_msr_status(u->r.mcr), changed;

	changed = (old ^ status) & MSR_STATUS;
	u->r.msr = (old & ~MSR_STATUS) | status;
	if (changed & MSR_CTS)
		u->r.msr |= MSR_DCTS;
	if (changed & MSR_DSR)
		u->r.msr |= MSR_DDSR;
	if (changed & MSR_DCD)
		u->r.msr |= MSR_DDCD;
	if ((changed & MSR_RI) && !(status & MSR_RI))
		u->r.msr |= MSR_TERI;	/* trailing edge only */
}

/* Writes one byte to out_fd: retries EINTR and short writes, waits a
 * bounded time on a non-blocking fd, and gives up on hard errors. */
static void tx_byte(struct uart *u, uint8_t byte)
{
	ssize_t n;

	if (u->tx_errno) {
		u->tx_dropped++;
		return;
	}
	for (;;) {
		n = write(u->out_fd, &byte, 1);
		if (n == 1)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = u->out_fd,
					    .events = POLLOUT };

			/* a reader that stalls for a second loses this byte
			 * but not the console */
			if (poll(&p, 1, 1000) > 0 && !(p.revents & POLLERR))
				continue;
			u->tx_dropped++;
			return;
		}
		/* n == 0 cannot happen for one byte except on odd fds;
		 * treat it like an error rather than spin */
		u->tx_errno = n < 0 ? errno : EIO;
		u->tx_dropped++;
		return;
	}
}

static void write_thr(struct uart *u, uint8_t val)
{
	/* writing THR acknowledges a THRE interrupt ... */
	u->r.thr_ipending = false;
	if (u->r.mcr & MCR_LOOP)
		rx_push(u, val);
	else
		tx_byte(u, val);
	/* ... and the byte has left at once, so THR is empty again */
	u->r.thr_ipending = true;
}

static void write_fcr(struct uart *u, uint8_t val)
{
	if ((val ^ u->r.fcr) & FCR_ENABLE) {
		/* switching the FIFOs on or off empties them */
		rx_clear(u);
	} else if ((val & FCR_ENABLE) && (val & FCR_CLEAR_RX)) {
		rx_clear(u);
	}
	/* the transmit FIFO is always empty: FCR_CLEAR_TX has no effect;
	 * the clear bits self-clear and DMA mode (bit 3) is not modelled */
	u->r.fcr = val & FCR_KEPT;
	if (!(u->r.fcr & FCR_ENABLE))
		u->r.fcr = 0;
	/* a smaller capacity may leave room for the reader, or none */
	pthread_cond_broadcast(&u->rx_room);
}

static void reg_write(struct uart *u, unsigned reg, uint8_t val)
{
	uint8_t old;

	switch (reg) {
	case UART_RBR:
		if (u->r.lcr & LCR_DLAB)
			u->r.dll = val;
		else
			write_thr(u, val);
		break;
	case UART_IER:
		if (u->r.lcr & LCR_DLAB) {
			u->r.dlm = val;
			break;
		}
		old = u->r.ier;
		u->r.ier = val & IER_MASK;
		/* enabling ETBEI while THR is empty raises THRE, which is
		 * how drivers kick transmission (and how Linux checks for
		 * a working THRE interrupt) */
		if (!(old & IER_ETBEI) && (u->r.ier & IER_ETBEI))
			u->r.thr_ipending = true;
		break;
	case UART_IIR:
		write_fcr(u, val);
		break;
	case UART_LCR:
		u->r.lcr = val;
		break;
	case UART_MCR:
		old = u->r.mcr;
		u->r.mcr = val & MCR_MASK;
		update_msr(u);
		if ((old & MCR_LOOP) && !(u->r.mcr & MCR_LOOP))
			pthread_cond_broadcast(&u->rx_room);
		break;
	case UART_LSR:
	case UART_MSR:
		/* factory test registers on real chips: ignored */
		break;
	case UART_SCR:
		u->r.scr = val;
		break;
	}
}

static uint8_t reg_read(struct uart *u, unsigned reg)
{
	uint8_t val, iid;

	switch (reg) {
	case UART_RBR:
		if (u->r.lcr & LCR_DLAB)
			return u->r.dll;
		return rx_pop(u);
	case UART_IER:
		return (u->r.lcr & LCR_DLAB) ? u->r.dlm : u->r.ier;
	case UART_IIR:
		iid = uart_pending_iid(&u->r);
		/* reading IIR acknowledges THRE when that is what it shows */
		if (iid == IIR_THRI)
			u->r.thr_ipending = false;
		return iid | ((u->r.fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
	case UART_LCR:
		return u->r.lcr;
	case UART_MCR:
		return u->r.mcr;
	case UART_LSR:
		val = u->r.lsr | LSR_THRE | LSR_TEMT;
		if (u->r.rx_count)
			val |= LSR_DR;
		/* reading LSR clears the error bits (and their interrupt) */
		u->r.lsr &= ~LSR_ERRORS;
		return val;
	case UART_MSR:
		val = u->r.msr;
		u->r.msr &= MSR_STATUS;	/* deltas clear on read */
		return val;
	case UART_SCR:
		return u->r.scr;
	}
	return 0xff;
}

/* ISA splits wider accesses into byte accesses to consecutive ports. */
static void uart_io(void *opaque, unsigned vcpu_id, uint64_t offset,
		    uint8_t *data, unsigned len, bool is_write)
{
	struct uart *u = opaque;
	unsigned i;

	(void)vcpu_id;
	pthread_mutex_lock(&u->lock);
	for (i = 0; i < len && offset + i < UART_NREGS; i++) {
		if (is_write)
			reg_write(u, (unsigned)(offset + i), data[i]);
		else
			data[i] = reg_read(u, (unsigned)(offset + i));
	}
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

/*
 * Reader thread: moves bytes from in_fd into the receive FIFO.  It holds
 * at most one read()'s worth of bytes that did not fit yet and does not
 * read more until they are in: the guest's reading rate throttles in_fd.
 * While the guest runs the UART in loopback, the receiver is disconnected
 * from the line and input waits; so it does while the VM's state is being
 * saved (quiesced), so that the FIFO holds still.  Ends at EOF, on a read
 * error or when the device is destroyed (the eventfd wakes its poll).
 */
static bool rx_held_back(const struct uart *u)
{
	return (u->r.mcr & MCR_LOOP) || u->quiesced ||
	       u->r.rx_count >= uart_rx_capacity(&u->r);
}

static void *uart_reader(void *arg)
{
	struct uart *u = arg;
	uint8_t buf[UART_FIFO_LEN];
	size_t have = 0, pos = 0;
	struct pollfd pfd[2];
	ssize_t n;

	for (;;) {
		if (pos < have) {
			pthread_mutex_lock(&u->lock);
			while (!u->stopping && rx_held_back(u))
				pthread_cond_wait(&u->rx_room, &u->lock);
			if (u->stopping) {
				pthread_mutex_unlock(&u->lock);
				break;
			}
			while (pos < have && !rx_held_back(u))
				rx_push(u, buf[pos++]);
			uart_update_irq(u);
			pthread_mutex_unlock(&u->lock);
			continue;
		}

		pfd[0] = (struct pollfd){ .fd = u->in_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = u->stop_fd, .events = POLLIN };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!pfd[0].revents)
			continue;
		n = read(u->in_fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN ||
			    errno == EWOULDBLOCK)
				continue;
			break;
		}
		if (n == 0)
			break;	/* EOF: no more input, the VM goes on */
		have = (size_t)n;
		pos = 0;
	}
	return NULL;
}

static void uart_destroy(void *obj)
{
	struct uart *u = obj;
	uint64_t one = 1;

	if (u->has_reader) {
		pthread_mutex_lock(&u->lock);
		u->stopping = true;
		pthread_cond_broadcast(&u->rx_room);
		pthread_mutex_unlock(&u->lock);
		/* an eventfd write of 1 cannot fail short of overflow */
		while (write(u->stop_fd, &one, sizeof(one)) < 0 &&
		       errno == EINTR)
			;
		pthread_join(u->reader, NULL);
	}
	if (u->stop_fd >= 0)
		close(u->stop_fd);
	pthread_cond_destroy(&u->rx_room);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

int uart16550_create(struct vm *vm, uint16_t port, unsigned irq, int out_fd,
		     int in_fd)
{
	sigset_t all, old_mask;
	struct uart *u;
	int ret;

	if (out_fd < 0)
		return -EBADF;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->vm = vm;
	u->irq = irq;
	u->out_fd = out_fd;
	u->in_fd = in_fd;
	u->stop_fd = -1;
	u->irq_level = 0;	/* the line starts low */
	u->r.lsr = 0;		/* THRE/TEMT are added on read */
	u->r.msr = MSR_CONNECTED;
	u->r.dll = 12;		/* 9600 baud from a 1.8432 MHz clock */
	/* the port tells two UARTs apart, and stays the same for a config */
	snprintf(u->name, sizeof(u->name), "uart@%#x", port);

	ret = pthread_mutex_init(&u->lock, NULL);
	if (ret) {
		free(u);
		return -ret;
	}
	ret = pthread_cond_init(&u->rx_room, NULL);
	if (ret) {
		pthread_mutex_destroy(&u->lock);
		free(u);
		return -ret;
	}

	if (in_fd >= 0) {
		u->stop_fd = eventfd(0, EFD_CLOEXEC);
		if (u->stop_fd < 0) {
			ret = -errno;
			uart_destroy(u);
			return ret;
		}
		/* the reader takes no signals: they belong to the threads
		 * the VM set up for them */
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old_mask);
		ret = pthread_create(&u->reader, NULL, uart_reader, u);
		pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
		if (ret) {
			uart_destroy(u);
			return -ret;
		}
		u->has_reader = true;
	}

	/* Owned before it is reachable from the bus: if registering fails,
	 * the VM still frees it and no range points at freed memory. */
	ret = vm_own(vm, uart_destroy, u);
	if (ret) {
		uart_destroy(u);
		return ret;
	}
	ret = bus_register(&vm->pio_bus, port, UART_NREGS, uart_io, u,
			   "uart16550");
	if (ret)
		return ret;
	return vm_state_register(vm, u->name, &uart_state_ops, u);
}
