// SPDX-License-Identifier: MIT
/*
 * util/state_buf and the VM's device-state registry (vm/vm_state.h),
 * without KVM: what is put comes back in order, a short or corrupt blob
 * fails without reading past its end, names are unique, and a device
 * that cannot quiesce leaves the others as they were.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "util/state_buf.h"
#include "vm/vm.h"
#include "vm/vm_state.h"

TEST(state_buf_round_trip)
{
	struct state_buf b;
	struct state_reader r;
	const uint8_t *blob;
	size_t n;
	uint8_t u8, raw[3];
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	bool flag;

	state_buf_init(&b);
	state_put_u8(&b, 0xab);
	state_put_u16(&b, 0xbeef);
	state_put_u32(&b, 0xdeadbeef);
	state_put_u64(&b, 0x0123456789abcdefull);
	state_put_bool(&b, true);
	state_put_blob(&b, "hello", 5);
	state_put_bytes(&b, "xyz", 3);
	for (int i = 0; i < 1000; i++)	/* past the first allocations */
		state_put_u32(&b, (uint32_t)i);
	CHECK_EQ(state_buf_error(&b), 0);

	state_reader_init(&r, b.data, b.len);
	CHECK_EQ(state_get_u8(&r, &u8), 0);
	CHECK_EQ(u8, 0xab);
	CHECK_EQ(state_get_u16(&r, &u16), 0);
	CHECK_EQ(u16, 0xbeef);
	CHECK_EQ(state_get_u32(&r, &u32), 0);
	CHECK_EQ(u32, 0xdeadbeef);
	CHECK_EQ(state_get_u64(&r, &u64), 0);
	CHECK(u64 == 0x0123456789abcdefull);
	CHECK_EQ(state_get_bool(&r, &flag), 0);
	CHECK(flag);
	CHECK_EQ(state_get_blob(&r, &blob, &n, 16), 0);
	CHECK(n == 5 && !memcmp(blob, "hello", 5));
	CHECK_EQ(state_get_bytes(&r, raw, 3), 0);
	CHECK(!memcmp(raw, "xyz", 3));
	for (int i = 0; i < 1000; i++) {
		CHECK_EQ(state_get_u32(&r, &u32), 0);
		CHECK_EQ(u32, (uint32_t)i);
	}
	CHECK_EQ(state_reader_left(&r), 0u);
	CHECK_EQ(state_reader_error(&r), 0);
	state_buf_release(&b);
}

TEST(state_reader_stops_at_its_end)
{
	uint8_t data[6] = { 5, 0, 0, 0, 'a', 'b' };	/* blob of 5, 2 there */
	struct state_reader r;
	const uint8_t *blob;
	uint64_t u64 = 1;
	uint32_t u32 = 1;
	size_t n;
	bool flag;

	state_reader_init(&r, data, sizeof(data));
	CHECK_EQ(state_get_blob(&r, &blob, &n, 64), -EBADMSG);
	CHECK(!blob && n == 0);
	/* once failed, every later get fails too */
	CHECK_EQ(state_get_u32(&r, &u32), -EBADMSG);
	CHECK_EQ(u32, 0u);
	CHECK_EQ(state_reader_error(&r), -EBADMSG);

	state_reader_init(&r, data, 4);
	CHECK_EQ(state_get_u64(&r, &u64), -EBADMSG);
	CHECK(u64 == 0);

	/* a blob over the caller's bound */
	state_reader_init(&r, data, sizeof(data));
	CHECK_EQ(state_get_blob(&r, &blob, &n, 4), -EBADMSG);

	data[0] = 2;		/* a bool is 0 or 1 */
	state_reader_init(&r, data, 1);
	CHECK_EQ(state_get_bool(&r, &flag), -EBADMSG);
}

struct fake_dev {
	int quiesce_ret;
	int quiesced;
};

static int fake_quiesce(void *opaque)
{
	struct fake_dev *d = opaque;

	if (d->quiesce_ret)
		return d->quiesce_ret;
	d->quiesced++;
	return 0;
}

static void fake_unquiesce(void *opaque)
{
	((struct fake_dev *)opaque)->quiesced--;
}

static int fake_save(void *opaque, struct state_buf *out)
{
	(void)opaque;
	state_put_u8(out, 1);
	return state_buf_error(out);
}

static int fake_load(void *opaque, struct state_reader *in, struct errmsg *err)
{
	uint8_t v;

	(void)opaque;
	(void)err;
	return state_get_u8(in, &v);
}

static const struct vm_state_ops fake_ops = {
	.quiesce = fake_quiesce, .unquiesce = fake_unquiesce,
	.save = fake_save, .load = fake_load,
};

TEST(vm_state_names_are_unique_and_quiesce_unwinds)
{
	struct fake_dev a = { 0 }, b = { 0 }, c = { .quiesce_ret = -EBUSY };
	struct errmsg err = { "" };
	struct vm vm;

	vm_init_bare(&vm);
	CHECK_EQ(vm_state_register(&vm, "a", &fake_ops, &a), 0);
	CHECK_EQ(vm_state_register(&vm, "b", &fake_ops, &b), 0);
	CHECK_EQ(vm_state_register(&vm, "a", &fake_ops, &b), -EEXIST);
	CHECK_EQ(vm_state_register(&vm, "", &fake_ops, &b), -EINVAL);
	CHECK_EQ(vm_state_register(&vm,
		"a-name-longer-than-thirty-one-bytes", &fake_ops, &b), -EINVAL);
	CHECK_EQ(vm_state_count(&vm), 2u);
	CHECK(vm_state_find(&vm, "b")->opaque == &b);
	CHECK(!vm_state_find(&vm, "c"));

	CHECK_EQ(vm_state_quiesce_all(&vm, &err), 0);
	CHECK(a.quiesced == 1 && b.quiesced == 1);
	vm_state_unquiesce_all(&vm);
	CHECK(a.quiesced == 0 && b.quiesced == 0);

	CHECK_EQ(vm_state_register(&vm, "c", &fake_ops, &c), 0);
	CHECK_EQ(vm_state_quiesce_all(&vm, &err), -EBUSY);
	CHECK(strstr(err.text, "c cannot stop its requests"));
	CHECK(a.quiesced == 0 && b.quiesced == 0);
	vm_destroy(&vm);
}

TEST(state_check_version_and_end_name_what_is_wrong)
{
	struct state_buf b;
	struct state_reader r;
	struct errmsg e;

	state_buf_init(&b);
	state_put_u32(&b, 3);
	state_put_u8(&b, 7);
	CHECK_EQ(state_buf_error(&b), 0);
	/* the right version and exactly one field: both checks pass */
	state_reader_init(&r, b.data, b.len);
	CHECK_EQ(state_check_version(&r, "dev", 3, &e), 0);
	CHECK_EQ(state_get_u8(&r, &(uint8_t){ 0 }), 0);
	CHECK_EQ(state_check_end(&r, "dev", &e), 0);
	/* another version */
	state_reader_init(&r, b.data, b.len);
	CHECK_EQ(state_check_version(&r, "dev", 2, &e), -EPROTONOSUPPORT);
	CHECK(strstr(e.text, "dev: state layout version 3") != NULL);
	/* too short for a version; no name: no prefix */
	state_reader_init(&r, b.data, 2);
	CHECK_EQ(state_check_version(&r, NULL, 3, &e), -EBADMSG);
	CHECK(strncmp(e.text, "state of 2 bytes has no version", 31) == 0);
	/* a byte left over, then a field read past the end */
	state_reader_init(&r, b.data, b.len);
	CHECK_EQ(state_check_version(&r, "dev", 3, &e), 0);
	CHECK_EQ(state_check_end(&r, "dev", &e), -EBADMSG);
	CHECK(strstr(e.text, "1 byte past its end") != NULL);
	CHECK_EQ(state_get_u16(&r, &(uint16_t){ 0 }), -EBADMSG);
	CHECK_EQ(state_check_end(&r, "dev", &e), -EBADMSG);
	CHECK(strstr(e.text, "dev: state truncated at 5 bytes") != NULL);
	state_buf_release(&b);
}
