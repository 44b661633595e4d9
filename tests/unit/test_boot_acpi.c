// SPDX-License-Identifier: MIT
/* ACPI tables: RSDP discovery, checksums, XSDT/FADT/DSDT/MADT contents,
 * and the loaders handing the RSDP to the guest. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/acpi.h"
#include "boot/mptable.h"
#include "boot/multiboot.h"
#include "devices/devices.h"
#include "harness.h"
#include "test_boot_util.h"
#include "virtio/mmio.h"

#define SCAN_START 0xE0000ull
#define SCAN_END 0x100000ull

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

/* What an OS does without a boot-protocol pointer: the first 16-byte
 * aligned "RSD PTR " in the BIOS area whose ACPI 1.0 checksum holds. */
static uint64_t scan_rsdp(struct guest_mem *m)
{
	for (uint64_t a = SCAN_START; a < SCAN_END; a += 16) {
		const uint8_t *p = tb_guest(m, a, 20);

		if (!memcmp(p, "RSD PTR ", 8) && byte_sum(p, 20) == 0)
			return a;
	}
	return 0;
}

/* The table at @gpa if its signature is @sig, its length is sane and its
 * checksum holds; NULL otherwise.  @len gets its length. */
static const uint8_t *get_table(struct guest_mem *m, uint64_t gpa,
				const char *sig, uint32_t *len)
{
	const uint8_t *t = tb_guest(m, gpa, ACPI_HDR_SIZE);

	if (!t || memcmp(t, sig, 4))
		return NULL;
	*len = tb_get32(t + ACPI_HDR_LENGTH);
	if (*len < ACPI_HDR_SIZE)
		return NULL;
	t = tb_guest(m, gpa, *len);
	if (!t || byte_sum(t, *len) != 0)
		return NULL;
	if (memcmp(t + ACPI_HDR_OEM_ID, "RACKVM", 6))
		return NULL;
	return t;
}

/* Writes the tables for @ncpus and the @ndevs virtio-mmio devices @devs
 * into a new guest RAM @m. */
static int write_tables_with(struct guest_mem *m, unsigned ncpus,
			     const struct boot_virtio_mmio *devs,
			     unsigned ndevs)
{
	struct boot_config cfg = { .ncpus = ncpus, .virtio_mmio = devs,
				   .nvirtio_mmio = ndevs };
	struct errmsg err = { "" };
	uint64_t rsdp = 0;
	int ret;

	if (guest_mem_init(m, TEST_MEM_SIZE, false, &err) < 0)
		return -ENOMEM;
	ret = acpi_write(m, &cfg, &rsdp, &err);
	if (ret == 0 && rsdp != BOOT_ACPI_RSDP_ADDR)
		return -EINVAL;
	return ret;
}

static int write_tables(struct guest_mem *m, unsigned ncpus)
{
	return write_tables_with(m, ncpus, NULL, 0);
}

TEST(boot_acpi_rsdp_found_by_scan)
{
	struct guest_mem m;
	const uint8_t *r;

	CHECK_EQ(write_tables(&m, 2), 0);
	CHECK_EQ(scan_rsdp(&m), BOOT_ACPI_RSDP_ADDR);
	r = tb_guest(&m, BOOT_ACPI_RSDP_ADDR, ACPI_RSDP_SIZE);
	CHECK_EQ(r[ACPI_RSDP_REVISION], 2);
	CHECK_EQ(tb_get32(r + ACPI_RSDP_LENGTH), 36);
	CHECK_EQ(byte_sum(r, 36), 0);		/* extended checksum */
	CHECK(!memcmp(r + 9, "RACKVM", 6));
	CHECK_EQ(tb_get64(r + ACPI_RSDP_XSDT), BOOT_ACPI_XSDT_ADDR);
	guest_mem_destroy(&m);
}

TEST(boot_acpi_xsdt_fadt_dsdt)
{
	const uint8_t *x, *f, *d;
	uint32_t xlen, flen, dlen;
	struct guest_mem m;

	CHECK_EQ(write_tables(&m, 1), 0);
	x = get_table(&m, BOOT_ACPI_XSDT_ADDR, "XSDT", &xlen);
	CHECK(x);
	CHECK_EQ(xlen, ACPI_HDR_SIZE + 2 * 8);
	f = get_table(&m, tb_get64(x + ACPI_HDR_SIZE), "FACP", &flen);
	CHECK(f);
	CHECK(get_table(&m, tb_get64(x + ACPI_HDR_SIZE + 8), "APIC", &dlen));

	CHECK_EQ(flen, 276);
	CHECK_EQ(f[ACPI_HDR_REVISION], 6);
	CHECK_EQ(f[ACPI_FADT_MINOR_VERSION], 5);
	CHECK_EQ(tb_get32(f + 36), 0);			/* no FACS */
	CHECK_EQ(tb_get64(f + 132), 0);
	CHECK(tb_get32(f + ACPI_FADT_FLAGS) & (1u << 20));	/* HW reduced */
	/* no 8042: Linux would probe it for a keyboard for seconds */
	CHECK_EQ(f[ACPI_FADT_IAPC_BOOT_ARCH] & 0x02, 0);
	CHECK_EQ(f[ACPI_FADT_IAPC_BOOT_ARCH] & 0x04, 0x04);	/* no VGA */
	CHECK_EQ(tb_get32(f + 76), 0);			/* no PM timer */
	CHECK_EQ(tb_get32(f + ACPI_FADT_DSDT), BOOT_ACPI_DSDT_ADDR);
	CHECK_EQ(tb_get64(f + ACPI_FADT_X_DSDT), BOOT_ACPI_DSDT_ADDR);

	d = get_table(&m, BOOT_ACPI_DSDT_ADDR, "DSDT", &dlen);
	CHECK(d);
	CHECK_EQ(d[ACPI_HDR_REVISION], 2);
	CHECK(dlen > ACPI_HDR_SIZE);
	guest_mem_destroy(&m);
}

/* Decodes a one- or two-byte PkgLength. */
static unsigned pkglength(const uint8_t *p, unsigned *bytes)
{
	if (!(p[0] & 0xC0)) {
		*bytes = 1;
		return p[0];
	}
	*bytes = 2;
	return (p[0] & 0x0F) | p[1] << 4;
}

/* Name (_S5, Package () { 5, 0 }) */
static const uint8_t s5_object[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x05,
				     0x02, 0x0A, ACPI_S5_SLEEP_TYPE, 0x00 };
#define S5_OBJECT_LEN sizeof(s5_object)

/* Power-off and reboot paths: \_S5 in the DSDT names the sleep type the
 * sleep control register (an I/O port rackvm serves) expects, and the
 * reset register is the i8042's reset command. */
TEST(boot_acpi_power_off_and_reset_registers)
{
	const uint8_t *f, *d;
	uint32_t flen, dlen;
	struct guest_mem m;

	CHECK_EQ(write_tables(&m, 1), 0);
	f = get_table(&m, BOOT_ACPI_FADT_ADDR, "FACP", &flen);
	d = get_table(&m, BOOT_ACPI_DSDT_ADDR, "DSDT", &dlen);
	CHECK(f && d);
	CHECK(!memcmp(d + dlen - S5_OBJECT_LEN, s5_object, S5_OBJECT_LEN));
	CHECK_EQ(f[ACPI_FADT_SLEEP_CONTROL_REG], 1);	/* system I/O */
	CHECK_EQ(tb_get64(f + ACPI_FADT_SLEEP_CONTROL_REG + 4),
		 ACPI_SLEEP_CONTROL_PORT);
	CHECK_EQ(tb_get64(f + ACPI_FADT_SLEEP_STATUS_REG + 4),
		 ACPI_SLEEP_STATUS_PORT);
	CHECK(tb_get32(f + ACPI_FADT_FLAGS) & ACPI_FADT_F_RESET_REG_SUP);
	CHECK_EQ(f[ACPI_FADT_RESET_REG], 1);
	CHECK_EQ(tb_get64(f + ACPI_FADT_RESET_REG + 4), 0x64);
	CHECK_EQ(f[ACPI_FADT_RESET_VALUE], 0xfe);
	guest_mem_destroy(&m);
}

TEST(boot_acpi_dsdt_declares_com1)
{
	static const uint8_t pnp0501[] = { 0x0C, 0x41, 0xD0, 0x05, 0x01 };
	static const uint8_t io[] = { 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03,
				      0x01, 0x08 };
	static const uint8_t irq4[] = { 0x22, 0x10, 0x00, 0x79, 0x00 };
	const uint8_t *d, *aml, *dev;
	uint32_t dlen;
	unsigned n, len;
	struct guest_mem m;

	CHECK_EQ(write_tables(&m, 1), 0);
	d = get_table(&m, BOOT_ACPI_DSDT_ADDR, "DSDT", &dlen);
	CHECK(d);
	aml = d + ACPI_HDR_SIZE;
	/* Scope (\_SB) spans the table up to the \_S5 object at its end */
	CHECK_EQ(aml[0], 0x10);
	len = pkglength(aml + 1, &n);
	CHECK_EQ(1 + len, dlen - ACPI_HDR_SIZE - S5_OBJECT_LEN);
	CHECK(!memcmp(aml + 1 + n, "\\_SB_", 5));
	/* Device (COM1) comes first */
	dev = aml + 1 + n + 5;
	CHECK_EQ(dev[0], 0x5B);
	CHECK_EQ(dev[1], 0x82);
	len = pkglength(dev + 2, &n);
	CHECK(!memcmp(dev + 2 + n, "COM1", 4));
	CHECK(memmem(d, dlen, "_HID", 4));
	CHECK(memmem(d, dlen, pnp0501, sizeof(pnp0501)));
	CHECK(memmem(d, dlen, io, sizeof(io)));
	/* IRQ 4, and the resource template ends the device */
	CHECK(!memcmp(dev + 2 + len - sizeof(irq4), irq4, sizeof(irq4)));
	/* the power button's two devices fill the rest of the scope */
	dev += 2 + len;
	CHECK(dev[0] == 0x5B && dev[1] == 0x82);
	len = pkglength(dev + 2, &n);
	CHECK(!memcmp(dev + 2 + n, "GED0", 4));
	dev += 2 + len;
	CHECK(dev[0] == 0x5B && dev[1] == 0x82);
	len = pkglength(dev + 2, &n);
	CHECK(!memcmp(dev + 2 + n, "PWRB", 4));
	CHECK(dev + 2 + len == d + dlen - S5_OBJECT_LEN);
	guest_mem_destroy(&m);
}

TEST(boot_acpi_madt_entries)
{
	const unsigned ncpus = 4;
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0, entries = 0;
	const uint8_t *t, *p;
	struct guest_mem m;
	uint32_t len;

	CHECK_EQ(write_tables(&m, ncpus), 0);
	t = get_table(&m, BOOT_ACPI_MADT_ADDR, "APIC", &len);
	CHECK(t);
	CHECK_EQ(tb_get32(t + ACPI_MADT_LAPIC_ADDR), 0xFEE00000);
	CHECK_EQ(tb_get32(t + ACPI_MADT_FLAGS), 1);	/* PCAT_COMPAT */
	for (p = t + ACPI_MADT_ENTRIES; p < t + len; p += p[1], entries++) {
		CHECK(p[1] >= 2 && p + p[1] <= t + len);
		switch (p[0]) {
		case 0:
			CHECK_EQ(p[1], 8);
			CHECK_EQ(p[2], lapics);		/* processor UID */
			CHECK_EQ(p[3], lapics);		/* APIC ID */
			CHECK_EQ(tb_get32(p + 4), 1);	/* enabled */
			lapics++;
			break;
		case 1:
			CHECK_EQ(p[1], 12);
			CHECK_EQ(p[2], ncpus);
			CHECK_EQ(tb_get32(p + 4), 0xFEC00000);
			CHECK_EQ(tb_get32(p + 8), 0);
			ioapics++;
			break;
		case 2:
			CHECK_EQ(p[1], 10);
			CHECK_EQ(p[2], 0);		/* ISA */
			CHECK_EQ(p[3], 0);		/* IRQ0 ... */
			CHECK_EQ(tb_get32(p + 4), 2);	/* ... is GSI 2 */
			isos++;
			break;
		case 4:
			CHECK_EQ(p[1], 6);
			CHECK_EQ(p[2], 0xFF);
			CHECK_EQ(p[5], 1);		/* LINT1 */
			nmis++;
			break;
		default:
			CHECK(!"unexpected MADT entry type");
		}
	}
	CHECK(p == t + len);
	CHECK_EQ(entries, ncpus + 3);
	CHECK_EQ(lapics, ncpus);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(isos, 1);
	CHECK_EQ(nmis, 1);
	guest_mem_destroy(&m);
}

TEST(boot_acpi_cpu_limits)
{
	struct boot_config cfg = { 0 };
	struct errmsg err = { "" };
	struct guest_mem m;
	uint64_t rsdp;
	uint32_t len;

	/* the largest MADT and MP table fit side by side */
	CHECK_EQ(write_tables(&m, ACPI_MAX_CPUS), 0);
	CHECK_EQ(mptable_write(&m, MPTABLE_MAX_CPUS, &err), 0);
	CHECK(get_table(&m, BOOT_ACPI_MADT_ADDR, "APIC", &len));
	CHECK_EQ(len, 44 + 254 * 8 + 12 + 10 + 6);
	CHECK(BOOT_ACPI_MADT_ADDR + len <= BOOT_BIOS_START);
	CHECK(get_table(&m, BOOT_ACPI_XSDT_ADDR, "XSDT", &len));
	CHECK(!memcmp(tb_guest(&m, BOOT_BIOS_START, 4), "_MP_", 4));
	cfg.ncpus = 255;
	CHECK_BOOT_ERR(acpi_write(&m, &cfg, &rsdp, &err), &err, -E2BIG,
		       "255 vCPUs do not fit the ACPI MADT (at most 254)");
	cfg.ncpus = 0;
	CHECK_BOOT_ERR(acpi_write(&m, &cfg, &rsdp, &err), &err, -EINVAL,
		       "at least one vCPU");
	guest_mem_destroy(&m);
}

TEST(boot_acpi_linux_rsdp_addr)
{
	static uint8_t img[TB_BZ_SIZE];
	struct boot_config cfg = tb_config(img, sizeof(img));
	struct errmsg err = { "" };
	struct boot_entry e;
	struct guest_mem m;

	tb_build_bzimage(img);		/* boot protocol 2.15 */
	cfg.ncpus = 2;
	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	CHECK_EQ(boot_load_linux(&m, &cfg, &e, &err), 0);
	CHECK_EQ(tb_get64(tb_guest(&m, BOOT_INFO_ADDR + 0x070, 8)),
		 BOOT_ACPI_RSDP_ADDR);
	CHECK_EQ(scan_rsdp(&m), BOOT_ACPI_RSDP_ADDR);

	/* 2.13 has no acpi_rsdp_addr: the field stays zero, the scan works */
	img[0x206] = 0x0d;
	memset(tb_guest(&m, 0, BOOT_HIGH_RAM), 0, BOOT_HIGH_RAM);
	CHECK_EQ(boot_load_linux(&m, &cfg, &e, &err), 0);
	CHECK_EQ(tb_get64(tb_guest(&m, BOOT_INFO_ADDR + 0x070, 8)), 0);
	CHECK_EQ(scan_rsdp(&m), BOOT_ACPI_RSDP_ADDR);
	guest_mem_destroy(&m);
}

TEST(boot_acpi_multiboot_tables_present)
{
	static uint8_t img[TEST_IMAGE_MAX];
	struct boot_config cfg = tb_config(img, 0);
	struct errmsg err = { "" };
	uint8_t text[64] = { 0 };
	struct test_seg seg = { PT_LOAD, 0x100000, 0, 0x1000, text,
				sizeof(text) };
	struct boot_entry e;
	struct guest_mem m;
	uint32_t len;

	tb_mb_header(text, 0, NULL);
	cfg.kernel_size = tb_build_elf(img, false, EM_386, 0x100020, &seg, 1);
	cfg.ncpus = 3;
	CHECK_EQ(guest_mem_init(&m, TEST_MEM_SIZE, false, &err), 0);
	CHECK_EQ(boot_load_multiboot(&m, &cfg, &e, &err), 0);
	CHECK_EQ(scan_rsdp(&m), BOOT_ACPI_RSDP_ADDR);
	CHECK(get_table(&m, BOOT_ACPI_MADT_ADDR, "APIC", &len));
	CHECK_EQ(len, 44 + 3 * 8 + 12 + 10 + 6);
	guest_mem_destroy(&m);
}

/* --- the DSDT as an ACPI disassembler reads it ---------------------------- */

#define DSL_MAX 65536

/* Drops comments and turns each run of whitespace into one space (none
 * before a closing parenthesis), so the disassembly can be compared
 * regardless of its layout. */
static void dsl_normalize(char *s)
{
	char *out = s;
	bool space = false;

	for (const char *p = s; *p;) {
		if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");

			p = end ? end + 2 : p + strlen(p);
			space = true;
			continue;
		}
		if (p[0] == '/' && p[1] == '/') {
			p += strcspn(p, "\n");
			space = true;
			continue;
		}
		if (isspace((unsigned char)*p)) {
			space = true;
			p++;
			continue;
		}
		/* a comment before a closing parenthesis leaves no space */
		if (space && out != s && *p != ')')
			*out++ = ' ';
		space = false;
		*out++ = *p++;
	}
	*out = 0;
}

/* Disassembles @table with iasl (Debian's acpica-tools) into @dsl,
 * normalized; 0, or -1 with the reason in @dsl. */
static int iasl_disassemble(const uint8_t *table, size_t len, char *dsl)
{
	char dir[256], path[300], cmd[600];
	size_t n = 0;
	FILE *f;
	int ret = -1;

	snprintf(dir, sizeof(dir), "%s/iasl-XXXXXX", harness_tmpdir());
	if (!mkdtemp(dir)) {
		snprintf(dsl, DSL_MAX, "mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/dsdt.aml", dir);
	f = fopen(path, "wb");
	if (f) {
		n = fwrite(table, 1, len, f);
		fclose(f);
	}
	snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -d dsdt.aml > iasl.log 2>&1",
		 dir);
	if (n != len) {
		snprintf(dsl, DSL_MAX, "cannot write %s", path);
	} else if (system(cmd) != 0) {
		snprintf(dsl, DSL_MAX, "'iasl -d' failed (is acpica-tools "
			 "installed? scripts/install-deps installs it)");
	} else {
		snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
		f = fopen(path, "r");
		if (f) {
			n = fread(dsl, 1, DSL_MAX - 1, f);
			dsl[n] = 0;
			fclose(f);
			dsl_normalize(dsl);
			ret = 0;
		} else {
			snprintf(dsl, DSL_MAX, "iasl wrote no %s", path);
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		ret = -1;
	return ret;
}

/* The disassembly must hold exactly @want, or the test fails showing it. */
#define CHECK_DSL(dsl, want)                                              \
	do {                                                              \
		if (!strstr(dsl, want)) {                                 \
			harness_fail(__FILE__, __LINE__,                  \
				     "DSDT lacks \"%s\"; disassembly: %s", \
				     want, dsl);                          \
			return;                                           \
		}                                                         \
	} while (0)

/* Every virtio-mmio device as Linux's virtio_mmio driver binds it through
 * ACPI: _HID "LNRO0005", its registers and its GSI (edge, active high:
 * the transport pulses the line through an irqfd).  rackvm's own layout
 * (virtio_mmio_describe) and one odd device, to see the values carried
 * through. */
TEST(boot_acpi_dsdt_virtio_mmio_iasl)
{
	struct boot_virtio_mmio devs[4];
	static char dsl[DSL_MAX];
	char want[512];
	const uint8_t *d;
	struct guest_mem m;
	uint32_t dlen;
	const char *p;
	unsigned count = 0;

	CHECK_EQ(virtio_mmio_describe(devs, 3), 0);
	devs[3] = (struct boot_virtio_mmio){ .base = 0xFEB00E00, .size = 0x200,
					     .gsi = 23 };
	CHECK_EQ(write_tables_with(&m, 2, devs, 4), 0);
	d = get_table(&m, BOOT_ACPI_DSDT_ADDR, "DSDT", &dlen);
	CHECK(d);
	if (iasl_disassemble(d, dlen, dsl)) {
		harness_fail(__FILE__, __LINE__, "%s", dsl);
		guest_mem_destroy(&m);
		return;
	}
	guest_mem_destroy(&m);

	CHECK_DSL(dsl, "Device (COM1) { Name (_HID, EisaId (\"PNP0501\")) "
		  "Name (_UID, Zero) Name (_CRS, ResourceTemplate () { "
		  "IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08,) "
		  "IRQNoFlags () {4} }) }");
	for (unsigned i = 0; i < 4; i++) {
		char uid[8];

		if (i < 2)
			snprintf(uid, sizeof(uid), "%s", i ? "One" : "Zero");
		else
			snprintf(uid, sizeof(uid), "0x%02X", i);
		snprintf(want, sizeof(want),
			 "Device (VR%02X) { Name (_HID, \"LNRO0005\") "
			 "Name (_UID, %s) Name (_CRS, ResourceTemplate () { "
			 "Memory32Fixed (ReadWrite, 0x%08llX, 0x%08llX,) "
			 "Interrupt (ResourceConsumer, Edge, ActiveHigh, "
			 "Exclusive, ,,) { 0x%08X, } }) }",
			 i, uid, (unsigned long long)devs[i].base,
			 (unsigned long long)devs[i].size, devs[i].gsi);
		CHECK_DSL(dsl, want);
	}
	for (p = dsl; (p = strstr(p, "LNRO0005")); p++)
		count++;
	CHECK_EQ(count, 4);
	CHECK_DSL(dsl, "Name (_S5, Package (0x02) { 0x05, Zero })");
	/* the power button: a Generic Event Device on ACPI_GED_GSI whose
	 * event notifies a control-method power button of a press */
	snprintf(want, sizeof(want),
		 "Device (GED0) { Name (_HID, \"ACPI0013\") Name (_UID, Zero) "
		 "Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer, "
		 "Edge, ActiveHigh, Exclusive, ,,) { 0x%08X, } }) "
		 "Method (_EVT, 1, NotSerialized) { Notify (PWRB, 0x80) } }",
		 ACPI_GED_GSI);
	CHECK_DSL(dsl, want);
	CHECK_DSL(dsl, "Device (PWRB) { Name (_HID, EisaId (\"PNP0C0C\")) "
		  "Name (_UID, Zero) }");
}

/* The layout (0xd0000000 + i * 4K, GSI 5 + i) as the README states it. */
TEST(boot_acpi_virtio_mmio_layout)
{
	struct boot_virtio_mmio devs[VIRTIO_MMIO_MAX_DEVICES];

	CHECK_EQ(virtio_mmio_describe(devs, VIRTIO_MMIO_MAX_DEVICES), 0);
	CHECK_EQ(devs[0].base, 0xd0000000);
	CHECK_EQ(devs[0].size, 0x1000);
	CHECK_EQ(devs[0].gsi, 5);
	CHECK_EQ(devs[15].base, 0xd000f000);
	CHECK_EQ(devs[15].gsi, 20);
	CHECK_EQ(virtio_mmio_describe(devs, VIRTIO_MMIO_MAX_DEVICES + 1),
		 -EINVAL);
}

/* The most devices fit the DSDT's room; out-of-range ones are refused. */
TEST(boot_acpi_virtio_mmio_limits)
{
	struct boot_virtio_mmio devs[BOOT_MAX_VIRTIO_MMIO + 1];
	struct boot_config cfg = { .ncpus = 1, .virtio_mmio = devs };
	struct errmsg err = { "" };
	struct guest_mem m;
	uint64_t rsdp;
	uint32_t len;

	for (unsigned i = 0; i <= BOOT_MAX_VIRTIO_MMIO; i++)
		devs[i] = (struct boot_virtio_mmio){
			.base = 0xd0000000 + i * 0x1000, .size = 0x1000,
			.gsi = 5 + i };
	CHECK_EQ(write_tables_with(&m, ACPI_MAX_CPUS, devs,
				   BOOT_MAX_VIRTIO_MMIO), 0);
	CHECK(get_table(&m, BOOT_ACPI_DSDT_ADDR, "DSDT", &len));
	CHECK(BOOT_ACPI_DSDT_ADDR + len <= BOOT_ACPI_END);
	CHECK(get_table(&m, BOOT_ACPI_MADT_ADDR, "APIC", &len));

	cfg.nvirtio_mmio = BOOT_MAX_VIRTIO_MMIO + 1;
	CHECK_BOOT_ERR(acpi_write(&m, &cfg, &rsdp, &err), &err, -E2BIG,
		       "17 virtio-mmio devices do not fit the DSDT");
	cfg.nvirtio_mmio = 2;
	devs[1].base = 0xfffff800;
	CHECK_BOOT_ERR(acpi_write(&m, &cfg, &rsdp, &err), &err, -EINVAL,
		       "device 1 at 0xfffff800+0x1000 is not a range below 4 GiB");
	devs[1].base = 0xd0001000;
	devs[1].gsi = ACPI_IOAPIC_PINS;
	CHECK_BOOT_ERR(acpi_write(&m, &cfg, &rsdp, &err), &err, -EINVAL,
		       "GSI 24 is not an IOAPIC input");
	guest_mem_destroy(&m);
}
