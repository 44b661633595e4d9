// SPDX-License-Identifier: MIT
/*
 * Saving and loading virtio devices (vm_state.h "virtio-mmio@N"), on bare
 * VMs without KVM: a virtio-blk driven through setup and requests,
 * quiesced and saved, is loaded into a second device on a copy of guest
 * RAM that then serves the driver's next request as the first would
 * have; a mid-setup driver resumes mid-setup; quiesce waits for a
 * request in flight (a read into a guest page that userfaultfd holds
 * back), times out on one that does not end, and unquiesce serves the
 * kicks that came meanwhile.  Hostile blobs: test_virtio_state_bad.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "util/clock.h"
#include "virtio/blk.h"
#include "virtio/mmio.h"
#include "virtio/rng.h"
#include "test_virtio_state.h"

/* ---- a disk and its driver ------------------------------------------- */

TEST(virtio_state_every_device_registers_by_index)
{
	struct vm vm;
	char path[256];

	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_make_disk(path, sizeof(path)), 0);
	CHECK_EQ(vs_blk_create(&vm, 0, path), 0);
	CHECK_EQ(virtio_rng_create(&vm, 3, NULL), 0);
	CHECK_EQ(vm_state_count(&vm), 2);
	CHECK(vstate_entry(&vm, 0) != NULL);
	CHECK(vstate_entry(&vm, 3) != NULL);
	CHECK(vstate_entry(&vm, 1) == NULL);
	CHECK(vstate_entry(&vm, 0)->ops->quiesce != NULL);
	CHECK(vstate_entry(&vm, 0)->ops->unquiesce != NULL);
	vm_destroy(&vm);
	unlink(path);
}

/* Three requests on the first device; saved; the fourth on the second. */
TEST(virtio_state_blk_restored_device_continues)
{
	struct vm vm1, vm2;
	struct vs_drv d1, d2;
	struct state_buf b;
	struct errmsg err = { "" };
	char path[256];
	uint8_t data[512], want[512];
	uint32_t gen;

	CHECK_EQ(vs_make_disk(path, sizeof(path)), 0);
	vm_init_bare(&vm1);
	CHECK_EQ(guest_mem_init(&vm1.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_blk_create(&vm1, 0, path), 0);
	vs_drv_init(&d1, &vm1, 0);
	vs_drv_setup(&d1, VIRTIO_TRANSPORT_FEATURES, true);
	/* a write of sector 5, a read of it, a read of sector 6 */
	memset(want, 0x5a, sizeof(want));
	vs_blk_post(&d1, 0, VIRTIO_BLK_T_OUT, 5, want);
	CHECK(vs_wait_used(&d1, 1));
	vs_blk_post(&d1, 1, VIRTIO_BLK_T_IN, 5, NULL);
	CHECK(vs_wait_used(&d1, 2));
	vs_blk_post(&d1, 2, VIRTIO_BLK_T_IN, 6, NULL);
	CHECK(vs_wait_used(&d1, 3));
	CHECK(vs_wait_irq(&vm1, 0));
	CHECK_EQ(vs_blk_status(&d1, 2), VIRTIO_BLK_S_OK);
	gen = vs_rd(&d1, VIRTIO_MMIO_CONFIG_GENERATION);

	CHECK_EQ(vstate_entry(&vm1, 0)->ops->quiesce(vstate_entry(&vm1, 0)->opaque), 0);
	CHECK_EQ(vstate_save(&vm1, 0, &b), 0);
	CHECK(b.len > 60);

	/* the other side: same config, guest RAM copied, the blob loaded */
	vm_init_bare(&vm2);
	CHECK_EQ(guest_mem_init(&vm2.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_blk_create(&vm2, 0, path), 0);
	memcpy(vm2.mem.base, vm1.mem.base, VS_MEM_SIZE);
	CHECK_EQ(vstate_load(&vm2, 0, b.data, b.len, &err), 0);
	/* the source's last interrupt, not acknowledged yet: told again */
	CHECK(vs_wait_irq(&vm2, 0));
	d2 = d1;
	d2.vm = &vm2;
	d2.ring.mem = &vm2.mem;
	/* the driver's view of the registers is what it left */
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_STATUS), VS_LIVE);
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_CONFIG_GENERATION), gen);
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_QUEUE_READY), 1);
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_QUEUE_NUM), VS_QSIZE);
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_QUEUE_DEVICE_LOW), TR_USED);
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	vs_ack_irq(&d2);

	/* the next request, as the driver would post it: read sector 5 */
	vs_blk_post(&d2, 3, VIRTIO_BLK_T_IN, 5, NULL);
	CHECK(vs_wait_used(&d2, 4));
	CHECK(vs_wait_irq(&vm2, 0));
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	CHECK_EQ(tr_used_elem(&d2.ring, 3).id, vs_blk_head(3));
	CHECK_EQ(tr_used_elem(&d2.ring, 3).len, 513);
	CHECK_EQ(vs_blk_status(&d2, 3), VIRTIO_BLK_S_OK);
	vs_blk_data(&d2, 3, data);
	CHECK(!memcmp(data, want, sizeof(data)));
	/* EVENT_IDX: the device asks for the next kick where it should */
	CHECK_EQ(tr_read16(&d2.ring, tr_avail_event_gpa(&d2.ring)), 4);
	/* the first device, unquiesced, still works too (a snapshot) */
	vstate_entry(&vm1, 0)->ops->unquiesce(vstate_entry(&vm1, 0)->opaque);
	vs_blk_post(&d1, 3, VIRTIO_BLK_T_IN, 6, NULL);
	CHECK(vs_wait_used(&d1, 4));
	state_buf_release(&b);
	vm_destroy(&vm2);
	vm_destroy(&vm1);
	unlink(path);
}

TEST(virtio_state_mid_setup_resumes_mid_setup)
{
	struct vm vm1, vm2;
	struct vs_drv d1, d2;
	struct state_buf b;
	struct errmsg err = { "" };
	struct pollfd p;
	char path[256];

	CHECK_EQ(vs_make_disk(path, sizeof(path)), 0);
	vm_init_bare(&vm1);
	CHECK_EQ(guest_mem_init(&vm1.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_blk_create(&vm1, 0, path), 0);
	vs_drv_init(&d1, &vm1, 0);
	/* features accepted, the queue ready, DRIVER_OK not yet */
	vs_drv_setup(&d1, VIRTIO_TRANSPORT_FEATURES, false);
	CHECK_EQ(vstate_save(&vm1, 0, &b), 0);
	vm_init_bare(&vm2);
	CHECK_EQ(guest_mem_init(&vm2.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_blk_create(&vm2, 0, path), 0);
	memcpy(vm2.mem.base, vm1.mem.base, VS_MEM_SIZE);
	CHECK_EQ(vstate_load(&vm2, 0, b.data, b.len, &err), 0);
	d2 = d1;
	d2.vm = &vm2;
	d2.ring.mem = &vm2.mem;
	CHECK_EQ(vs_rd(&d2, VIRTIO_MMIO_STATUS), VS_LIVE & ~VIRTIO_STATUS_DRIVER_OK);
	/* a buffer before DRIVER_OK is not served ... */
	vs_blk_post(&d2, 0, VIRTIO_BLK_T_IN, 7, NULL);
	p = (struct pollfd){ .fd = vs_irq_fd(&vm2, 0), .events = POLLIN };
	CHECK_EQ(poll(&p, 1, 100), 0);
	CHECK_EQ(tr_used_idx(&d2.ring), 0);
	/* ... the driver's DRIVER_OK brings it in */
	vs_wr(&d2, VIRTIO_MMIO_STATUS, VS_LIVE);
	CHECK(vs_wait_used(&d2, 1));
	CHECK_EQ(vs_blk_status(&d2, 0), VIRTIO_BLK_S_OK);
	state_buf_release(&b);
	vm_destroy(&vm2);
	vm_destroy(&vm1);
	unlink(path);
}

/* ---- quiesce ----------------------------------------------------------- */

TEST(virtio_state_unquiesce_serves_kicks_that_came_meanwhile)
{
	const struct vm_state_entry *e;
	struct vs_drv d;
	struct pollfd p;
	char path[256];
	struct vm vm;

	CHECK_EQ(vs_make_disk(path, sizeof(path)), 0);
	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_blk_create(&vm, 0, path), 0);
	vs_drv_init(&d, &vm, 0);
	vs_drv_setup(&d, VIRTIO_TRANSPORT_FEATURES, true);
	e = vstate_entry(&vm, 0);
	CHECK_EQ(e->ops->quiesce(e->opaque), 0);
	vs_blk_post(&d, 0, VIRTIO_BLK_T_IN, 1, NULL);
	vs_blk_post(&d, 1, VIRTIO_BLK_T_IN, 2, NULL);
	p = (struct pollfd){ .fd = vs_irq_fd(&vm, 0), .events = POLLIN };
	CHECK_EQ(poll(&p, 1, 200), 0);
	CHECK_EQ(tr_used_idx(&d.ring), 0);
	e->ops->unquiesce(e->opaque);
	CHECK(vs_wait_used(&d, 2));
	CHECK(vs_wait_irq(&vm, 0));
	CHECK_EQ(vs_blk_status(&d, 1), VIRTIO_BLK_S_OK);
	/* quiesced with a kick read and parked: teardown does not hang */
	CHECK_EQ(e->ops->quiesce(e->opaque), 0);
	vs_blk_post(&d, 2, VIRTIO_BLK_T_IN, 3, NULL);
	usleep(50 * 1000);
	vm_destroy(&vm);
	unlink(path);
}

struct quiesce_call {
	const struct vm_state_entry *e;
	int ret;
	uint64_t done_ns;	/* atomic: when it returned */
};

static void *quiesce_thread(void *arg)
{
	struct quiesce_call *c = arg;

	c->ret = c->e->ops->quiesce(c->e->opaque);
	__atomic_store_n(&c->done_ns, monotonic_ns(), __ATOMIC_SEQ_CST);
	return NULL;
}

/* A userfaultfd over the guest page at @gpa: a read into it waits for
 * us.  -1 (errno set) where the kernel does not let us. */
static int hold_page(struct vm *vm, uint64_t gpa)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { (uintptr_t)guest_mem_ptr(&vm->mem, gpa, 4096), 4096 },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -1;
	if (ioctl(fd, UFFDIO_API, &api) || ioctl(fd, UFFDIO_REGISTER, &reg)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits for the fault on the held page, then lets it through. */
static bool fault_seen(int uffd, int timeout_ms)
{
	struct pollfd p = { .fd = uffd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1;
}

static bool release_page(int uffd, struct vm *vm, uint64_t gpa)
{
	static uint8_t zero[4096] __attribute__((aligned(4096)));
	struct uffd_msg msg;
	struct uffdio_copy copy = {
		.dst = (uintptr_t)guest_mem_ptr(&vm->mem, gpa, 4096),
		.src = (uintptr_t)zero, .len = 4096,
	};

	if (read(uffd, &msg, sizeof(msg)) != sizeof(msg))
		return false;
	return ioctl(uffd, UFFDIO_COPY, &copy) == 0;
}

TEST(virtio_state_quiesce_waits_for_the_request_in_flight)
{
	struct quiesce_call c = { 0 };
	uint8_t data[512], want[512];
	struct vs_drv d;
	char path[256];
	pthread_t th;
	struct vm vm;
	uint64_t released;
	int uffd;

	CHECK_EQ(vs_make_disk(path, sizeof(path)), 0);
	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_blk_create(&vm, 0, path), 0);
	vs_drv_init(&d, &vm, 0);
	vs_drv_setup(&d, VIRTIO_TRANSPORT_FEATURES, true);
	uffd = hold_page(&vm, vs_blk_data_gpa(0));
	if (uffd < 0) {
		vm_destroy(&vm);
		unlink(path);
		SKIP("no userfaultfd on shared memory here");
	}
	/* the device reads sector 9 into the held page and waits there */
	vs_blk_post(&d, 0, VIRTIO_BLK_T_IN, 9, NULL);
	CHECK(fault_seen(uffd, 5000));
	c.e = vstate_entry(&vm, 0);
	CHECK_EQ(pthread_create(&th, NULL, quiesce_thread, &c), 0);
	usleep(200 * 1000);
	CHECK_EQ(__atomic_load_n(&c.done_ns, __ATOMIC_SEQ_CST), 0);
	CHECK_EQ(tr_used_idx(&d.ring), 0);
	released = monotonic_ns();
	CHECK(release_page(uffd, &vm, vs_blk_data_gpa(0)));
	pthread_join(th, NULL);
	CHECK_EQ(c.ret, 0);
	CHECK(c.done_ns >= released);
	/* finished, published and signalled before quiesce returned */
	CHECK_EQ(tr_used_idx(&d.ring), 1);
	CHECK(vs_wait_irq(&vm, 0));
	CHECK_EQ(vs_blk_status(&d, 0), VIRTIO_BLK_S_OK);
	memset(want, 9, sizeof(want));
	vs_blk_data(&d, 0, data);
	CHECK(!memcmp(data, want, sizeof(data)));
	c.e->ops->unquiesce(c.e->opaque);
	close(uffd);
	vm_destroy(&vm);
	unlink(path);
}

TEST(virtio_state_quiesce_gives_up_on_a_request_that_never_ends)
{
	const struct vm_state_entry *e;
	struct vs_drv d;
	char path[256];
	struct vm vm;
	uint64_t t0;
	int uffd;

	CHECK_EQ(vs_make_disk(path, sizeof(path)), 0);
	vm_init_bare(&vm);
	CHECK_EQ(guest_mem_init(&vm.mem, VS_MEM_SIZE, false, NULL), 0);
	CHECK_EQ(vs_blk_create(&vm, 0, path), 0);
	vs_drv_init(&d, &vm, 0);
	vs_drv_setup(&d, VIRTIO_TRANSPORT_FEATURES, true);
	uffd = hold_page(&vm, vs_blk_data_gpa(0));
	if (uffd < 0) {
		vm_destroy(&vm);
		unlink(path);
		SKIP("no userfaultfd on shared memory here");
	}
	vs_blk_post(&d, 0, VIRTIO_BLK_T_IN, 9, NULL);
	CHECK(fault_seen(uffd, 5000));
	e = vstate_entry(&vm, 0);
	virtio_mmio_set_quiesce_timeout(e->opaque, 300);
	t0 = monotonic_ns();
	CHECK_EQ(e->ops->quiesce(e->opaque), -ETIMEDOUT);
	CHECK(monotonic_ns() - t0 >= 250 * 1000000ull);
	CHECK(monotonic_ns() - t0 < 3 * NSEC_PER_SEC);
	/* not quiesced: once the disk answers, the next request is served */
	CHECK(release_page(uffd, &vm, vs_blk_data_gpa(0)));
	CHECK(vs_wait_used(&d, 1));
	vs_blk_post(&d, 1, VIRTIO_BLK_T_IN, 10, NULL);
	CHECK(vs_wait_used(&d, 2));
	close(uffd);
	vm_destroy(&vm);
	unlink(path);
}
