// SPDX-License-Identifier: MIT
/* Split virtqueue chain walking against hand-built rings in guest RAM,
 * including every hostile-driver case, and EVENT_IDX suppression. */
#include <errno.h>
#include <stdlib.h>

#include "harness.h"
#include "virtio/virtqueue.h"
#include "virtio_test_util.h"

#define MEM_SIZE (16ull << 20)

struct vq_fixture {
	struct guest_mem mem;
	struct test_ring ring;
	struct virtq vq;
	struct virtq_chain *chain;
};

static int setup(struct vq_fixture *f, uint16_t size, bool event_idx,
		 bool indirect)
{
	if (guest_mem_init(&f->mem, MEM_SIZE, false, NULL))
		return -1;
	f->chain = malloc(sizeof(*f->chain));
	tr_init(&f->ring, &f->mem, size);
	virtq_init(&f->vq, &f->mem);
	f->vq.layout = tr_layout(&f->ring);
	return virtq_enable(&f->vq, VIRTQ_MAX_SIZE, event_idx, indirect);
}

static void teardown(struct vq_fixture *f)
{
	free(f->chain);
	guest_mem_destroy(&f->mem);
}

/* Publishes the chain at @head and expects the queue to break with @e. */
static enum virtq_error pop_error(struct vq_fixture *f, uint16_t head)
{
	tr_publish(&f->ring, head);
	if (virtq_pop(&f->vq, f->chain) != -EIO)
		return VIRTQ_OK;
	/* broken stays broken */
	if (virtq_pop(&f->vq, f->chain) != -EIO)
		return VIRTQ_OK;
	return f->vq.error;
}

TEST(virtq_walks_a_good_chain)
{
	struct vq_fixture f;
	struct virtq_used_elem e;

	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 3, TR_DATA, 16, VIRTQ_DESC_F_NEXT, 5);
	tr_desc(&f.ring, 5, TR_DATA + 0x1000, 512,
		VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	tr_desc(&f.ring, 0, TR_DATA + 0x2000, 1, VIRTQ_DESC_F_WRITE, 0);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 0);
	tr_publish(&f.ring, 3);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 1);
	CHECK_EQ(f.chain->head, 3);
	CHECK_EQ(f.chain->nsegs, 3);
	CHECK(f.chain->segs[0].ptr == guest_mem_ptr(&f.mem, TR_DATA, 16));
	CHECK(!f.chain->segs[0].is_write);
	CHECK_EQ(f.chain->segs[1].len, 512);
	CHECK(f.chain->segs[1].is_write);
	CHECK(f.chain->segs[2].ptr == guest_mem_ptr(&f.mem, TR_DATA + 0x2000, 1));
	CHECK_EQ(f.chain->readable, 16);
	CHECK_EQ(f.chain->writable, 513);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 0);
	virtq_push(&f.vq, 3, 513);
	CHECK_EQ(tr_used_idx(&f.ring), 1);
	e = tr_used_elem(&f.ring, 0);
	CHECK_EQ(e.id, 3);
	CHECK_EQ(e.len, 513);
	CHECK(virtq_should_notify(&f.vq));
	CHECK(!virtq_should_notify(&f.vq));	/* nothing new */
	teardown(&f);
}

TEST(virtq_walks_an_indirect_table)
{
	struct vq_fixture f;

	CHECK_EQ(setup(&f, 8, false, true), 0);
	tr_desc_at(&f.ring, TR_INDIRECT, 0, TR_DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	tr_desc_at(&f.ring, TR_INDIRECT, 2, TR_DATA + 0x1000, 4096,
		   VIRTQ_DESC_F_WRITE, 0);
	tr_desc(&f.ring, 1, TR_INDIRECT, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	tr_publish(&f.ring, 1);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 1);
	CHECK_EQ(f.chain->head, 1);
	CHECK_EQ(f.chain->nsegs, 2);
	CHECK_EQ(f.chain->readable, 16);
	CHECK_EQ(f.chain->writable, 4096);
	teardown(&f);
}

TEST(virtq_breaks_on_descriptor_outside_ram)
{
	struct vq_fixture f;

	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 0, MEM_SIZE, 1, 0, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_BUFFER);
	teardown(&f);

	/* straddles the end of RAM */
	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 0, MEM_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_BUFFER);
	teardown(&f);

	/* address wraps around */
	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 0, UINT64_MAX - 3, 8, 0, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_BUFFER);
	teardown(&f);
}

TEST(virtq_breaks_on_loop)
{
	struct vq_fixture f;

	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 0, TR_DATA, 1, VIRTQ_DESC_F_NEXT, 1);
	tr_desc(&f.ring, 1, TR_DATA, 1, VIRTQ_DESC_F_NEXT, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_CHAIN_TOO_LONG);
	teardown(&f);

	/* a descriptor pointing to itself */
	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 4, TR_DATA, 1, VIRTQ_DESC_F_NEXT, 4);
	CHECK_EQ(pop_error(&f, 4), VIRTQ_ERR_CHAIN_TOO_LONG);
	teardown(&f);

	/* a loop inside an indirect table */
	CHECK_EQ(setup(&f, 8, false, true), 0);
	tr_desc_at(&f.ring, TR_INDIRECT, 0, TR_DATA, 1, VIRTQ_DESC_F_NEXT, 1);
	tr_desc_at(&f.ring, TR_INDIRECT, 1, TR_DATA, 1, VIRTQ_DESC_F_NEXT, 0);
	tr_desc(&f.ring, 0, TR_INDIRECT, 32, VIRTQ_DESC_F_INDIRECT, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_CHAIN_TOO_LONG);
	teardown(&f);
}

TEST(virtq_breaks_on_chain_longer_than_queue)
{
	struct vq_fixture f;

	/* every descriptor valid and in range, but size + 1 of them can
	 * only come from revisiting one */
	CHECK_EQ(setup(&f, 4, false, false), 0);
	for (unsigned i = 0; i < 4; i++)
		tr_desc(&f.ring, i, TR_DATA, 8, VIRTQ_DESC_F_NEXT, (i + 1) % 4);
	CHECK_EQ(pop_error(&f, 2), VIRTQ_ERR_CHAIN_TOO_LONG);
	teardown(&f);
}

TEST(virtq_breaks_on_bad_indirect_table)
{
	static const uint32_t bad_lens[] = { 0, 24, 15, 16 * (VIRTQ_INDIRECT_MAX + 1) };
	struct vq_fixture f;

	for (unsigned i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
		CHECK_EQ(setup(&f, 8, false, true), 0);
		tr_desc(&f.ring, 0, TR_INDIRECT, bad_lens[i],
			VIRTQ_DESC_F_INDIRECT, 0);
		CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_INDIRECT);
		teardown(&f);
	}
	/* nested */
	CHECK_EQ(setup(&f, 8, false, true), 0);
	tr_desc_at(&f.ring, TR_INDIRECT, 0, TR_INDIRECT, 16,
		   VIRTQ_DESC_F_INDIRECT, 0);
	tr_desc(&f.ring, 0, TR_INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_INDIRECT);
	teardown(&f);
	/* INDIRECT together with NEXT */
	CHECK_EQ(setup(&f, 8, false, true), 0);
	tr_desc(&f.ring, 0, TR_INDIRECT, 16,
		VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_INDIRECT);
	teardown(&f);
	/* not negotiated */
	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 0, TR_INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_INDIRECT);
	teardown(&f);
	/* table outside RAM */
	CHECK_EQ(setup(&f, 8, false, true), 0);
	tr_desc(&f.ring, 0, MEM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_BUFFER);
	teardown(&f);
	/* next index past the table */
	CHECK_EQ(setup(&f, 8, false, true), 0);
	tr_desc_at(&f.ring, TR_INDIRECT, 0, TR_DATA, 1, VIRTQ_DESC_F_NEXT, 2);
	tr_desc(&f.ring, 0, TR_INDIRECT, 32, VIRTQ_DESC_F_INDIRECT, 0);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_NEXT_INDEX);
	teardown(&f);
}

TEST(virtq_breaks_on_index_out_of_range)
{
	struct vq_fixture f;

	CHECK_EQ(setup(&f, 8, false, false), 0);
	CHECK_EQ(pop_error(&f, 8), VIRTQ_ERR_HEAD_INDEX);
	teardown(&f);

	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 0, TR_DATA, 1, VIRTQ_DESC_F_NEXT, 0xffff);
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_NEXT_INDEX);
	teardown(&f);

	/* the driver claims more new buffers than the ring holds */
	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_write16(&f.ring, TR_AVAIL + 2, 9);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), -EIO);
	CHECK_EQ(f.vq.error, VIRTQ_ERR_AVAIL_IDX);
	teardown(&f);
}

TEST(virtq_breaks_on_length_overflow)
{
	struct vq_fixture f;

	/* 256 descriptors of 16 MiB each: 4 GiB, one byte too many for
	 * the 32-bit used length */
	CHECK_EQ(setup(&f, 256, false, false), 0);
	for (unsigned i = 0; i < 256; i++)
		tr_desc(&f.ring, i, 0, (uint32_t)MEM_SIZE,
			i < 255 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	CHECK_EQ(pop_error(&f, 0), VIRTQ_ERR_LENGTH);
	teardown(&f);
}

TEST(virtq_rejects_bad_layout)
{
	static const struct virtq_layout bad[] = {
		{ 0, TR_DESC, TR_AVAIL, TR_USED },		/* size 0 */
		{ 12, TR_DESC, TR_AVAIL, TR_USED },		/* not 2^n */
		{ 512, TR_DESC, TR_AVAIL, TR_USED },		/* > max */
		{ 8, TR_DESC + 8, TR_AVAIL, TR_USED },		/* align */
		{ 8, TR_DESC, TR_AVAIL + 1, TR_USED },
		{ 8, TR_DESC, TR_AVAIL, TR_USED + 2 },
		{ 8, MEM_SIZE - 64, TR_AVAIL, TR_USED },	/* past RAM */
		{ 8, TR_DESC, TR_AVAIL, 0xfee00000 },		/* MMIO */
	};
	struct guest_mem m;
	struct virtq vq;

	CHECK_EQ(guest_mem_init(&m, MEM_SIZE, false, NULL), 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		virtq_init(&vq, &m);
		vq.layout = bad[i];
		CHECK_EQ(virtq_enable(&vq, VIRTQ_MAX_SIZE, true, true), -EINVAL);
		CHECK_EQ(vq.error, VIRTQ_ERR_LAYOUT);
		CHECK(!vq.ready);
	}
	guest_mem_destroy(&m);
}

TEST(virtq_need_event_math)
{
	/* [old, new) contains event */
	CHECK(virtq_need_event(0, 1, 0));
	CHECK(!virtq_need_event(1, 1, 0));
	CHECK(virtq_need_event(5, 10, 3));
	CHECK(!virtq_need_event(10, 10, 3));
	CHECK(!virtq_need_event(2, 10, 3));
	/* across the 16-bit wrap */
	CHECK(virtq_need_event(0xffff, 2, 0xfffe));
	CHECK(virtq_need_event(1, 2, 0xfffe));
	CHECK(!virtq_need_event(2, 2, 0xfffe));
	CHECK(!virtq_need_event(0xfffd, 2, 0xfffe));
}

TEST(virtq_event_idx_suppresses_interrupts)
{
	struct vq_fixture f;

	CHECK_EQ(setup(&f, 8, true, false), 0);
	for (unsigned i = 0; i < 4; i++)
		tr_desc(&f.ring, i, TR_DATA, 1, VIRTQ_DESC_F_WRITE, 0);
	tr_publish(&f.ring, 0);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 1);
	virtq_push(&f.vq, 0, 1);
	CHECK(virtq_should_notify(&f.vq));	/* first decision */
	/* driver wants an interrupt only once used idx passes 2 */
	tr_write16(&f.ring, tr_used_event_gpa(&f.ring), 2);
	tr_publish(&f.ring, 1);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 1);
	virtq_push(&f.vq, 1, 1);			/* used idx 2 */
	CHECK(!virtq_should_notify(&f.vq));
	tr_publish(&f.ring, 2);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 1);
	virtq_push(&f.vq, 2, 1);			/* used idx 3 */
	CHECK(virtq_should_notify(&f.vq));
	/* the empty ring told the driver where to kick next */
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 0);
	CHECK_EQ(tr_read16(&f.ring, tr_avail_event_gpa(&f.ring)), 3);
	teardown(&f);
}

TEST(virtq_no_interrupt_flag_without_event_idx)
{
	struct vq_fixture f;

	CHECK_EQ(setup(&f, 8, false, false), 0);
	tr_desc(&f.ring, 0, TR_DATA, 1, VIRTQ_DESC_F_WRITE, 0);
	tr_write16(&f.ring, TR_AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	tr_publish(&f.ring, 0);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 1);
	virtq_push(&f.vq, 0, 1);
	CHECK(!virtq_should_notify(&f.vq));
	tr_write16(&f.ring, TR_AVAIL, 0);
	tr_publish(&f.ring, 0);
	CHECK_EQ(virtq_pop(&f.vq, f.chain), 1);
	virtq_push(&f.vq, 0, 1);
	CHECK(virtq_should_notify(&f.vq));
	teardown(&f);
}
