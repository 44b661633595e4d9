// SPDX-License-Identifier: MIT
/* virtio-console on a bare VM: transmitted bytes reach the output file,
 * input from a FIFO reaches a receive buffer, bad inputs are refused. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio_test_util.h"

#define MEM_SIZE (16ull << 20)
#define BASE VIRTIO_MMIO_BASE

static void wr(struct vm *vm, uint64_t off, uint32_t v)
{
	mmio_wr32(&vm->mmio_bus, BASE, off, v);
}

/* Queue @q on the test rings (one queue at a time). */
static void live_queue(struct vm *vm, unsigned q, uint16_t size)
{
	wr(vm, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(vm, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(vm, VIRTIO_MMIO_DRIVER_FEATURES, 1);	/* VERSION_1 */
	wr(vm, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	   VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	wr(vm, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(vm, VIRTIO_MMIO_QUEUE_NUM, size);
	wr(vm, VIRTIO_MMIO_QUEUE_DESC_LOW, TR_DESC);
	wr(vm, VIRTIO_MMIO_QUEUE_DRIVER_LOW, TR_AVAIL);
	wr(vm, VIRTIO_MMIO_QUEUE_DEVICE_LOW, TR_USED);
	wr(vm, VIRTIO_MMIO_QUEUE_READY, 1);
	wr(vm, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE |
	   VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	   VIRTIO_STATUS_DRIVER_OK);
}

static bool wait_used(struct test_ring *r, uint16_t want)
{
	for (int i = 0; i < 500; i++) {
		if (tr_used_idx(r) == want)
			return true;
		usleep(10000);
	}
	return false;
}

static void tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", harness_tmpdir(), name);
}

TEST(virtio_console_transmit_to_file)
{
	struct virtio_console_options opt;
	char path[256], got[64] = { 0 };
	struct test_ring ring;
	struct vm vm;
	int fd;

	tmp_path(path, sizeof(path), "vconsole-out");
	opt = (struct virtio_console_options){ .out_path = path };
	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, MEM_SIZE, false, NULL), 0);
	CHECK_EQ(virtio_console_create(&vm, 0, &opt, NULL), 0);
	tr_init(&ring, &vm.mem, 8);
	live_queue(&vm, VIRTIO_CONSOLE_Q_TX, 8);
	/* "hello " + "world\n" in a two-buffer chain */
	guest_mem_write(&vm.mem, TR_DATA, "hello world\n", 12);
	tr_desc(&ring, 0, TR_DATA, 6, VIRTQ_DESC_F_NEXT, 1);
	tr_desc(&ring, 1, TR_DATA + 6, 6, 0, 0);
	tr_publish(&ring, 0);
	wr(&vm, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_TX);
	CHECK(wait_used(&ring, 1));
	vm_destroy(&vm);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, got, sizeof(got)), 12);
	close(fd);
	unlink(path);
	CHECK(!strcmp(got, "hello world\n"));
}

TEST(virtio_console_input_from_fifo)
{
	struct virtio_console_options opt;
	char out[256], in[256], got[16] = { 0 };
	struct test_ring ring;
	struct vm vm;
	int fd;

	tmp_path(out, sizeof(out), "vconsole-o");
	tmp_path(in, sizeof(in), "vconsole-i");
	CHECK_EQ(mkfifo(in, 0600), 0);
	opt = (struct virtio_console_options){ .out_path = out, .in_path = in };
	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, MEM_SIZE, false, NULL), 0);
	CHECK_EQ(virtio_console_create(&vm, 0, &opt, NULL), 0);
	fd = open(in, O_WRONLY | O_NONBLOCK);
	CHECK(fd >= 0);
	/* bytes before the driver is ready wait in the FIFO */
	CHECK_EQ(write(fd, "ping\n", 5), 5);
	tr_init(&ring, &vm.mem, 8);
	live_queue(&vm, VIRTIO_CONSOLE_Q_RX, 8);
	tr_desc(&ring, 0, TR_DATA, 3, VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&ring, 0);
	wr(&vm, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_RX);
	CHECK(wait_used(&ring, 1));
	CHECK_EQ(tr_used_elem(&ring, 0).len, 3);
	/* the rest waits for the next buffer */
	tr_desc(&ring, 1, TR_DATA + 16, 16, VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&ring, 1);
	wr(&vm, VIRTIO_MMIO_QUEUE_NOTIFY, VIRTIO_CONSOLE_Q_RX);
	CHECK(wait_used(&ring, 2));
	CHECK_EQ(tr_used_elem(&ring, 1).len, 2);
	guest_mem_read(&vm.mem, TR_DATA, got, 3);
	guest_mem_read(&vm.mem, TR_DATA + 16, got + 3, 2);
	close(fd);
	vm_destroy(&vm);
	unlink(in);
	unlink(out);
	CHECK(!strcmp(got, "ping\n"));
}

TEST(virtio_console_rejects_regular_input)
{
	struct virtio_console_options opt = { .out_path = "/dev/null",
					      .in_path = "/etc/passwd" };
	struct errmsg err = { "" };
	struct vm vm;

	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, MEM_SIZE, false, NULL), 0);
	CHECK(virtio_console_create(&vm, 0, &opt, &err) < 0);
	CHECK(strstr(err.text, "not a regular file") != NULL);
	vm_destroy(&vm);
}
