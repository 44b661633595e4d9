// SPDX-License-Identifier: MIT
/*
 * The 16550A UART's saved state (vm/vm_state.h), registered as
 * "uart@<port>".  Layout, version 1, little-endian:
 *
 *	u32 version
 *	u8  IER, LCR, MCR, LSR (latched errors), MSR, SCR, FCR, DLL, DLM
 *	u8  THRE interrupt latched (0/1)
 *	u32 bytes in the receive FIFO, then those bytes, oldest first
 *	u8  IRQ line level the registers imply (0/1)
 *
 * IIR is not stored: it is computed from the rest, and so is the line
 * level, which is in the blob as a check that both ends agree.  The
 * fds, the reader thread and what it read from in_fd but did not hand
 * to the FIFO yet are the host's: the config gives the new VM its own.
 */
#include <errno.h>

#include "devices/dev_state.h"
#include "devices/uart16550_internal.h"

#define UART_STATE_VERSION 1

/* The reader is the only one that changes the registers while the vCPUs
 * are paused; holding its input back is a flag under the lock, so this
 * returns at once and nothing moves until unquiesce. */
static int uart_quiesce(void *opaque)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	u->quiesced = true;
	pthread_mutex_unlock(&u->lock);
	return 0;
}

static void uart_unquiesce(void *opaque)
{
	struct uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	u->quiesced = false;
	pthread_cond_broadcast(&u->rx_room);
	pthread_mutex_unlock(&u->lock);
}

static int uart_save(void *opaque, struct state_buf *out)
{
	struct uart *u = opaque;
	const struct uart_regs *r = &u->r;
	unsigned i;

	pthread_mutex_lock(&u->lock);
	state_put_u32(out, UART_STATE_VERSION);
	state_put_u8(out, r->ier);
	state_put_u8(out, r->lcr);
	state_put_u8(out, r->mcr);
	state_put_u8(out, r->lsr);
	state_put_u8(out, r->msr);
	state_put_u8(out, r->scr);
	state_put_u8(out, r->fcr);
	state_put_u8(out, r->dll);
	state_put_u8(out, r->dlm);
	state_put_bool(out, r->thr_ipending);
	state_put_u32(out, r->rx_count);
	for (i = 0; i < r->rx_count; i++)
		state_put_u8(out, r->rx[(r->rx_head + i) % UART_FIFO_LEN]);
	state_put_bool(out, uart_pending_iid(r) != IIR_NO_INT);
	pthread_mutex_unlock(&u->lock);
	return state_buf_error(out);
}

/* The FIFO's count is checked before its bytes are read: it bounds them. */
static int get_rx_fifo(struct state_reader *in, const char *dev,
		       struct uart_regs *r, struct errmsg *err)
{
	uint32_t count;

	if (state_get_u32(in, &count))
		return 0;	/* truncated: dev_state_end() says so */
	if (count > UART_FIFO_LEN)
		return errmsg_set(err, -EBADMSG, "%s: rx fifo count %u over %u",
				  dev, count, UART_FIFO_LEN);
	state_get_bytes(in, r->rx, count);
	r->rx_head = 0;
	r->rx_count = count;
	return 0;
}

static int get_regs(struct state_reader *in, const char *dev,
		    struct uart_regs *r, struct errmsg *err)
{
	int ret;

	state_get_u8(in, &r->ier);
	state_get_u8(in, &r->lcr);
	state_get_u8(in, &r->mcr);
	state_get_u8(in, &r->lsr);
	state_get_u8(in, &r->msr);
	state_get_u8(in, &r->scr);
	state_get_u8(in, &r->fcr);
	state_get_u8(in, &r->dll);
	state_get_u8(in, &r->dlm);
	ret = dev_state_flag(in, dev, "THRE interrupt latch", &r->thr_ipending,
			     err);
	if (ret)
		return ret;
	return get_rx_fifo(in, dev, r, err);
}

/* Only values the register model can reach: a load must not put the
 * device where no guest could have put it. */
static int check_regs(const char *dev, const struct uart_regs *r, bool line,
		      struct errmsg *err)
{
	bool implied = uart_pending_iid(r) != IIR_NO_INT;

	if (r->ier & ~IER_MASK)
		return errmsg_set(err, -EBADMSG,
				  "%s: ier %#x has reserved bits", dev, r->ier);
	if (r->mcr & ~MCR_MASK)
		return errmsg_set(err, -EBADMSG,
				  "%s: mcr %#x has reserved bits", dev, r->mcr);
	/* FCR keeps a trigger level only with the FIFOs on */
	if ((r->fcr & ~FCR_KEPT) || (r->fcr && !(r->fcr & FCR_ENABLE)))
		return errmsg_set(err, -EBADMSG,
				  "%s: fcr %#x is not a kept FIFO setting", dev,
				  r->fcr);
	if (r->lsr & ~LSR_ERRORS)
		return errmsg_set(err, -EBADMSG,
				  "%s: lsr %#x has bits other than errors", dev,
				  r->lsr);
	if ((r->msr & MSR_STATUS) != uart_msr_status(r->mcr))
		return errmsg_set(err, -EBADMSG,
				  "%s: msr %#x does not match mcr %#x", dev,
				  r->msr, r->mcr);
	if (r->rx_count > uart_rx_capacity(r))
		return errmsg_set(err, -EBADMSG,
				  "%s: rx fifo count %u over %u (FIFOs off)",
				  dev, r->rx_count, uart_rx_capacity(r));
	if (line != implied)
		return errmsg_set(err, -EBADMSG,
				  "%s: irq line %d but the registers imply %d",
				  dev, line, implied);
	return 0;
}

static int uart_load(void *opaque, struct state_reader *in,
		     struct errmsg *err)
{
	struct uart *u = opaque;
	struct uart_regs r = { 0 };
	bool line = false;
	int ret;

	ret = dev_state_version(in, u->name, UART_STATE_VERSION, err);
	if (!ret)
		ret = get_regs(in, u->name, &r, err);
	if (!ret)
		ret = dev_state_flag(in, u->name, "irq line", &line, err);
	if (!ret)
		ret = dev_state_end(in, u->name, err);
	if (!ret)
		ret = check_regs(u->name, &r, line, err);
	if (ret)
		return ret;

	pthread_mutex_lock(&u->lock);
	u->r = r;
	/* drive the line even if we think it is there already: the
	 * irqchip was restored on its own and must agree with us */
	u->irq_level = -1;
	uart_update_irq(u);
	/* the FIFO may have room now, or none */
	pthread_cond_broadcast(&u->rx_room);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

const struct vm_state_ops uart_state_ops = {
	.quiesce = uart_quiesce,
	.unquiesce = uart_unquiesce,
	.save = uart_save,
	.load = uart_load,
};
