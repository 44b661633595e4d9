/* SPDX-License-Identifier: MIT */
/*
 * The 16550A UART's insides, shared by its register model
 * (uart16550.c) and its saved state (uart16550_state.c); nothing
 * outside those two files includes this.
 *
 * struct uart_regs is everything the guest can observe (the receive
 * FIFO kept as a ring, whose position it cannot see), and nothing else:
 * the state code saves it whole and loads it whole.  The rest of
 * struct uart (fds, thread, irq line bookkeeping) belongs to the host
 * side of the device and to the config.  All of it is guarded by
 * uart->lock, except what create/destroy set up before/after the reader
 * thread runs.
 */
#ifndef RACKVM_DEVICES_UART16550_INTERNAL_H
#define RACKVM_DEVICES_UART16550_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vm/vm.h"
#include "vm/vm_state.h"

#define UART_FIFO_LEN 16

#define IER_MASK 0x0f	/* the rest reads as 0 on a real 16550A */
#define IIR_NO_INT 0x01
#define FCR_ENABLE 0x01
#define FCR_TRIGGER_SHIFT 6
/* what FCR keeps: enable and the receive trigger level */
#define FCR_KEPT (FCR_ENABLE | 0xc0)
#define MCR_MASK 0x1f
#define LSR_OE 0x02
#define LSR_PE 0x04
#define LSR_FE 0x08
#define LSR_BI 0x10
#define LSR_ERRORS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)
#define MSR_STATUS 0xf0

struct uart_regs {
	uint8_t ier, lcr, mcr, scr, fcr;
	uint8_t dll, dlm;
	uint8_t lsr;		/* latched error bits only */
	uint8_t msr;		/* status bits and latched deltas */
	bool thr_ipending;	/* THRE interrupt latched */

	uint8_t rx[UART_FIFO_LEN];
	unsigned rx_head, rx_count;
};

struct uart {
	struct vm *vm;
	unsigned irq;
	int out_fd;
	int in_fd;
	char name[VM_STATE_NAME_MAX];	/* in the VM's state registry */

	pthread_mutex_t lock;
	pthread_cond_t rx_room;	/* reader waits: FIFO full, loopback,
				 * quiesced */

	struct uart_regs r;
	int irq_level;		/* last level driven, -1: unknown */

	/* output that could not be written; output stops after a hard
	 * error (the VM must go on: the console is not worth dying for) */
	int tx_errno;
	uint64_t tx_dropped;

	/* reader thread */
	bool has_reader;
	bool stopping;
	bool quiesced;		/* the reader holds its input back */
	int stop_fd;		/* eventfd: wakes the reader's poll */
	pthread_t reader;
};

/* Bytes the receiver holds with the FIFOs as @r has them. */
unsigned uart_rx_capacity(const struct uart_regs *r);
/* The highest-priority pending interrupt as IIR bits 3:0. */
uint8_t uart_pending_iid(const struct uart_regs *r);
/* The MSR status bits (7:4) that MCR @mcr implies. */
uint8_t uart_msr_status(uint8_t mcr);
/* Drives the IRQ line to the level the registers imply, if it changed
 * (or is unknown: irq_level -1).  With the lock held. */
void uart_update_irq(struct uart *u);

/* uart16550_state.c */
extern const struct vm_state_ops uart_state_ops;

#endif
