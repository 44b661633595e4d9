// SPDX-License-Identifier: MIT
#include "boot/acpi.h"

#include <errno.h>
#include <string.h>

#include "boot/aml.h"
#include "boot/layout.h"
#include "boot/loader.h"
#include "boot/mptable.h"
#include "devices/devices.h"

#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID "RKVM"
#define ACPI_CREATOR_REVISION 1

#define ACPI_RSDP_REV 2		/* ACPI 2.0+: has the XSDT pointer */
#define ACPI_XSDT_REV 1
#define ACPI_FADT_REV 6		/* FADT version 6.5, as in ACPI 6.5 */
#define ACPI_FADT_MINOR 5
#define ACPI_DSDT_REV 2		/* 2+: AML integers are 64 bits */
#define ACPI_MADT_REV 5

#define ACPI_XSDT_ENTRIES 2	/* FADT, MADT */
#define ACPI_XSDT_SIZE (ACPI_HDR_SIZE + 8 * ACPI_XSDT_ENTRIES)
#define ACPI_DSDT_MAX (BOOT_ACPI_END - BOOT_ACPI_DSDT_ADDR)
#define ACPI_MADT_MAX (ACPI_MADT_ENTRIES +                             \
		       ACPI_MAX_CPUS * ACPI_MADT_LAPIC_SIZE +          \
		       ACPI_MADT_IOAPIC_SIZE + ACPI_MADT_ISO_SIZE +    \
		       ACPI_MADT_LAPIC_NMI_SIZE)

_Static_assert(BOOT_ACPI_RSDP_ADDR >= 0xE0000 && BOOT_ACPI_RSDP_ADDR % 16 == 0,
	       "the RSDP must be where a guest scans for it");
_Static_assert(BOOT_ACPI_RSDP_ADDR + ACPI_RSDP_SIZE <= BOOT_ACPI_XSDT_ADDR &&
	       BOOT_ACPI_XSDT_ADDR + ACPI_XSDT_SIZE <= BOOT_ACPI_FADT_ADDR &&
	       BOOT_ACPI_FADT_ADDR + ACPI_FADT_SIZE <= BOOT_ACPI_MADT_ADDR &&
	       BOOT_ACPI_MADT_ADDR + ACPI_MADT_MAX <= BOOT_ACPI_DSDT_ADDR &&
	       BOOT_ACPI_END <= BOOT_BIOS_START,
	       "ACPI tables overlap each other or the MP table");
_Static_assert(ACPI_MAX_CPUS == MPTABLE_MAX_CPUS,
	       "the MADT and the MP table describe the same CPUs");

/* The ISA serial port the DSDT describes (COM1, as src/cli wires it). */
#define ACPI_COM1_PORT 0x3F8
#define ACPI_COM1_PORTS 8
#define ACPI_COM1_IRQ 4

int acpi_check_ncpus(unsigned ncpus, struct errmsg *err)
{
	return boot_check_ncpus(ncpus, "ACPI MADT", err);
}

/* The value that makes the bytes of [p, p+len) sum to zero. */
static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

/* Fills the common header of a table whose body is already in place and
 * checksums the whole table, so it must come last. */
static void finish_table(uint8_t *t, const char *sig, size_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le32(t + ACPI_HDR_LENGTH, (uint32_t)len);
	t[ACPI_HDR_REVISION] = rev;
	t[ACPI_HDR_CHECKSUM] = 0;
	memcpy(t + ACPI_HDR_OEM_ID, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put_le32(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put_le32(t + 32, ACPI_CREATOR_REVISION);
	t[ACPI_HDR_CHECKSUM] = acpi_checksum(t, len);
}

static void build_rsdp(uint8_t *r)
{
	memset(r, 0, ACPI_RSDP_SIZE);
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, ACPI_OEM_ID, 6);
	r[ACPI_RSDP_REVISION] = ACPI_RSDP_REV;
	/* no RSDT: every ACPI 2.0+ OS follows the XSDT */
	put_le32(r + ACPI_RSDP_LENGTH, ACPI_RSDP_SIZE);
	put_le64(r + ACPI_RSDP_XSDT, BOOT_ACPI_XSDT_ADDR);
	r[ACPI_RSDP_CHECKSUM] = acpi_checksum(r, ACPI_RSDP_V1_SIZE);
	r[ACPI_RSDP_EXT_CHECKSUM] = acpi_checksum(r, ACPI_RSDP_SIZE);
}

static void build_xsdt(uint8_t *t)
{
	memset(t, 0, ACPI_XSDT_SIZE);
	put_le64(t + ACPI_HDR_SIZE, BOOT_ACPI_FADT_ADDR);
	put_le64(t + ACPI_HDR_SIZE + 8, BOOT_ACPI_MADT_ADDR);
	finish_table(t, "XSDT", ACPI_XSDT_SIZE, ACPI_XSDT_REV);
}

#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1

/* A Generic Address Structure for one byte-wide I/O port. */
static void put_io_port_gas(uint8_t *p, uint16_t port)
{
	p[0] = ACPI_GAS_SYSTEM_IO;
	p[1] = 8;			/* register bit width */
	p[2] = 0;			/* bit offset */
	p[3] = ACPI_GAS_ACCESS_BYTE;
	put_le64(p + 4, port);
}

/* Hardware-reduced: no PM1/GPE blocks, PM timer, SCI or FACS (all left
 * zero), so the guest needs none of that hardware.  Power-off goes
 * through the sleep control register (src/devices/acpi_sleep.c) and
 * reboot through the reset register, which is the i8042's reset command
 * so both reboot paths of a PC kernel end up in the same place.  The boot
 * flags tell Linux what legacy hardware is there: no VGA, no CMOS RTC and
 * no 8042 keyboard controller.  rackvm's i8042 only takes the reset
 * command (which needs no driver: Linux writes it to port 0x64 directly);
 * with the 8042 flag set Linux probes it for a keyboard, and waits
 * seconds for answers it never gets. */
static void build_fadt(uint8_t *t)
{
	memset(t, 0, ACPI_FADT_SIZE);
	put_le32(t + ACPI_FADT_DSDT, (uint32_t)BOOT_ACPI_DSDT_ADDR);
	put_le16(t + ACPI_FADT_IAPC_BOOT_ARCH,
		 ACPI_IAPC_LEGACY_DEVICES |
		 ACPI_IAPC_VGA_NOT_PRESENT | ACPI_IAPC_CMOS_RTC_NOT_PRESENT);
	put_le32(t + ACPI_FADT_FLAGS, ACPI_FADT_F_HW_REDUCED |
		 ACPI_FADT_F_PWR_BUTTON | ACPI_FADT_F_SLP_BUTTON |
		 ACPI_FADT_F_RESET_REG_SUP);
	put_io_port_gas(t + ACPI_FADT_RESET_REG, I8042_COMMAND_PORT);
	t[ACPI_FADT_RESET_VALUE] = I8042_CMD_PULSE_RESET;
	put_io_port_gas(t + ACPI_FADT_SLEEP_CONTROL_REG, ACPI_SLEEP_CONTROL_PORT);
	put_io_port_gas(t + ACPI_FADT_SLEEP_STATUS_REG, ACPI_SLEEP_STATUS_PORT);
	t[ACPI_FADT_MINOR_VERSION] = ACPI_FADT_MINOR;
	put_le64(t + ACPI_FADT_X_DSDT, BOOT_ACPI_DSDT_ADDR);
	finish_table(t, "FACP", ACPI_FADT_SIZE, ACPI_FADT_REV);
}

/*
 * AML for the DSDT.  A hardware-reduced machine has no legacy PIC, so
 * Linux maps no ISA IRQ by default: the serial port only gets IRQ 4 if
 * the DSDT declares it.  Each virtio-mmio device gets a "LNRO0005" device,
 * the ID Linux's virtio_mmio driver binds through ACPI.  The body is
 *
 *	Scope (\_SB) {
 *		Device (COM1) {
 *			Name (_HID, EisaId ("PNP0501"))
 *			Name (_UID, Zero)
 *			Name (_CRS, ResourceTemplate () {
 *				IO (Decode16, 0x3F8, 0x3F8, 1, 8)
 *				IRQNoFlags () { 4 }
 *			})
 *		}
 *		Device (VR00) {		// VR01 ... VR0F: one per device
 *			Name (_HID, "LNRO0005")
 *			Name (_UID, 0)
 *			Name (_CRS, ResourceTemplate () {
 *				Memory32Fixed (ReadWrite, base, size)
 *				Interrupt (ResourceConsumer, Edge, ActiveHigh,
 *					   Exclusive) { gsi }
 *			})
 *		}
 *	}
 *
 * Edge, active high: the transport pulses its GSI through an irqfd
 * (src/virtio/mmio.h says why), which the IOAPIC latches only as an edge.
 *
 * No PCI host bridge, and no MCFG table: Linux probes the legacy
 * configuration ports 0xCF8/0xCFC (about 200 unclaimed port accesses,
 * well under 0.1 s of a boot), logs "PCI: Fatal: No config space access
 * function found" and "System does not support PCI", and goes on, which
 * is right for this machine.  Only "pci=off" on the command line would
 * save those exits, and that is the user's to choose.
 */
#define VIRTIO_MMIO_HID "LNRO0005"

/* Worst-case AML sizes, so the DSDT provably fits its room (below). */
#define AML_COM1_DEVICE_MAX 64
#define AML_VIRTIO_RES_LEN (3 + RES_MEMORY32_FIXED_LEN + 3 + RES_EXT_IRQ_LEN + 2)
#define AML_VIRTIO_BODY_MAX (15 + 7 + 10 + AML_VIRTIO_RES_LEN)
#define AML_VIRTIO_DEVICE_MAX (2 + 2 + 4 + AML_VIRTIO_BODY_MAX)
#define AML_POWER_BUTTON_MAX 128	/* GED0 and PWRB */
#define AML_SCOPE_BODY_MAX (AML_COM1_DEVICE_MAX + \
			    BOOT_MAX_VIRTIO_MMIO * AML_VIRTIO_DEVICE_MAX + \
			    AML_POWER_BUTTON_MAX)
#define AML_S5_LEN 11

_Static_assert(AML_SCOPE_BODY_MAX + 5 + 2 < 0x1000,
	       "the scope's PkgLength needs more than two bytes");
_Static_assert(ACPI_HDR_SIZE + 1 + 2 + 5 + AML_SCOPE_BODY_MAX + AML_S5_LEN <=
	       ACPI_DSDT_MAX, "the DSDT outgrows its room in layout.h");

static size_t com1_resources(uint8_t *r)
{
	size_t n = 0;

	r[n++] = RES_IO;
	r[n++] = RES_IO_DECODE16;
	put_le16(r + n, ACPI_COM1_PORT);	/* minimum base */
	put_le16(r + n + 2, ACPI_COM1_PORT);	/* maximum base */
	n += 4;
	r[n++] = 1;				/* alignment */
	r[n++] = ACPI_COM1_PORTS;
	r[n++] = RES_IRQ_NOFLAGS;
	put_le16(r + n, 1u << ACPI_COM1_IRQ);
	n += 2;
	return n + res_end(r + n);
}

static size_t aml_com1(uint8_t *p)
{
	uint8_t res[16], body[AML_COM1_DEVICE_MAX];
	size_t n = 0;

	n += aml_name_eisaid(body + n, "_HID", "PNP0501");
	n += aml_name_byte(body + n, "_UID", 0);
	n += aml_name_buffer(body + n, "_CRS", res, (uint8_t)com1_resources(res));
	return aml_device(p, "COM1", body, n);
}

static size_t virtio_resources(uint8_t *r, const struct boot_virtio_mmio *d)
{
	size_t n = 0;

	r[n++] = RES_MEMORY32_FIXED;
	put_le16(r + n, RES_MEMORY32_FIXED_LEN);
	n += 2;
	r[n++] = RES_MEMORY_READ_WRITE;
	put_le32(r + n, (uint32_t)d->base);
	put_le32(r + n + 4, (uint32_t)d->size);
	n += 8;
	r[n++] = RES_EXT_IRQ;
	put_le16(r + n, RES_EXT_IRQ_LEN);
	n += 2;
	r[n++] = RES_EXT_IRQ_CONSUMER | RES_EXT_IRQ_EDGE;
	r[n++] = 1;				/* one interrupt */
	put_le32(r + n, d->gsi);
	n += 4;
	return n + res_end(r + n);
}

/* Device (VRnn), nn the index in hex: _UID is the index too. */
static size_t aml_virtio_device(uint8_t *p, unsigned index,
				const struct boot_virtio_mmio *d)
{
	uint8_t res[AML_VIRTIO_RES_LEN], body[AML_VIRTIO_BODY_MAX];
	char name[5] = { 'V', 'R', "0123456789ABCDEF"[index >> 4 & 0xF],
			 "0123456789ABCDEF"[index & 0xF], 0 };
	size_t n = 0;

	n += aml_name_string(body + n, "_HID", VIRTIO_MMIO_HID);
	n += aml_name_byte(body + n, "_UID", (uint8_t)index);
	n += aml_name_buffer(body + n, "_CRS", res,
			     (uint8_t)virtio_resources(res, d));
	return aml_device(p, name, body, n);
}

/*
 * The power button of a hardware-reduced machine (ACPI 6.x, 5.6.9 and
 * 4.8.2.2.1.2): a Generic Event Device whose one interrupt makes the OS
 * run _EVT, which notifies the control-method power button PWRB of a
 * press (0x80); Linux's button driver turns that into KEY_POWER.
 *
 *	Device (GED0) {
 *		Name (_HID, "ACPI0013")
 *		Name (_UID, 0)
 *		Name (_CRS, ResourceTemplate () {
 *			Interrupt (ResourceConsumer, Edge, ActiveHigh,
 *				   Exclusive) { ACPI_GED_GSI } })
 *		Method (_EVT, 1) { Notify (PWRB, 0x80) }
 *	}
 *	Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")) Name (_UID, 0) }
 */
static size_t aml_power_button(uint8_t *p)
{
	static const uint8_t evt[] = {
		AML_METHOD_OP, 13, '_', 'E', 'V', 'T', 1,
		AML_NOTIFY_OP, 'P', 'W', 'R', 'B', AML_BYTE_PREFIX, 0x80,
	};
	uint8_t res[16], body[AML_POWER_BUTTON_MAX];
	size_t n = 0, r = 0, len;

	res[r++] = RES_EXT_IRQ;
	put_le16(res + r, RES_EXT_IRQ_LEN);
	r += 2;
	res[r++] = RES_EXT_IRQ_CONSUMER | RES_EXT_IRQ_EDGE;
	res[r++] = 1;				/* one interrupt */
	put_le32(res + r, ACPI_GED_GSI);
	r += 4;
	r += res_end(res + r);
	n += aml_name_string(body + n, "_HID", "ACPI0013");
	n += aml_name_byte(body + n, "_UID", 0);
	n += aml_name_buffer(body + n, "_CRS", res, (uint8_t)r);
	memcpy(body + n, evt, sizeof(evt));
	n += sizeof(evt);
	len = aml_device(p, "GED0", body, n);
	n = aml_name_eisaid(body, "_HID", "PNP0C0C");
	n += aml_name_byte(body + n, "_UID", 0);
	return len + aml_device(p + len, "PWRB", body, n);
}

static size_t build_dsdt_aml(uint8_t *p, const struct boot_config *cfg)
{
	static const uint8_t scope_op[] = { AML_SCOPE_OP };
	uint8_t body[AML_SCOPE_BODY_MAX];
	size_t n = aml_com1(body);

	for (unsigned i = 0; i < cfg->nvirtio_mmio; i++)
		n += aml_virtio_device(body + n, i, &cfg->virtio_mmio[i]);
	n += aml_power_button(body + n);
	return aml_package(p, scope_op, sizeof(scope_op), "\\_SB_", body, n);
}

/* Name (_S5, Package () { 5, 0 }): the sleep type a guest writes to the
 * sleep control register to power off. */
static size_t aml_s5(uint8_t *p)
{
	size_t n = aml_name(p, "_S5_");

	p[n++] = AML_PACKAGE_OP;
	p[n++] = 5;			/* PkgLength: itself + 4 bytes */
	p[n++] = 2;			/* NumElements */
	p[n++] = AML_BYTE_PREFIX;
	p[n++] = ACPI_S5_SLEEP_TYPE;	/* SLP_TYPa */
	p[n++] = AML_ZERO;		/* SLP_TYPb, unused */
	return n;
}

static size_t build_dsdt(uint8_t *t, const struct boot_config *cfg)
{
	size_t len;

	memset(t, 0, ACPI_DSDT_MAX);
	len = ACPI_HDR_SIZE + build_dsdt_aml(t + ACPI_HDR_SIZE, cfg);
	len += aml_s5(t + len);
	finish_table(t, "DSDT", len, ACPI_DSDT_REV);
	return len;
}

static size_t put_lapic(uint8_t *p, unsigned id)
{
	p[0] = ACPI_MADT_TYPE_LAPIC;
	p[1] = ACPI_MADT_LAPIC_SIZE;
	p[2] = (uint8_t)id;	/* ACPI processor UID */
	p[3] = (uint8_t)id;	/* APIC ID, as KVM numbers vCPUs */
	put_le32(p + 4, ACPI_MADT_LAPIC_ENABLED);
	return ACPI_MADT_LAPIC_SIZE;
}

static size_t put_ioapic(uint8_t *p, uint8_t id)
{
	p[0] = ACPI_MADT_TYPE_IOAPIC;
	p[1] = ACPI_MADT_IOAPIC_SIZE;
	p[2] = id;
	p[3] = 0;
	put_le32(p + 4, MPTABLE_IOAPIC_ADDR);
	put_le32(p + 8, 0);	/* its pin 0 is GSI 0 */
	return ACPI_MADT_IOAPIC_SIZE;
}

/* The PIT's IRQ0 is wired to IOAPIC pin 2 (KVM's in-kernel IOAPIC, like
 * a PC); flags 0 means "conforms to the ISA bus": edge, active high. */
static size_t put_irq0_override(uint8_t *p)
{
	p[0] = ACPI_MADT_TYPE_ISO;
	p[1] = ACPI_MADT_ISO_SIZE;
	p[2] = 0;	/* ISA */
	p[3] = 0;	/* IRQ0 */
	put_le32(p + 4, 2);
	put_le16(p + 8, 0);
	return ACPI_MADT_ISO_SIZE;
}

static size_t put_lapic_nmi(uint8_t *p)
{
	p[0] = ACPI_MADT_TYPE_LAPIC_NMI;
	p[1] = ACPI_MADT_LAPIC_NMI_SIZE;
	p[2] = 0xFF;	/* all processors */
	put_le16(p + 3, 0);
	p[5] = 1;	/* LINT1 */
	return ACPI_MADT_LAPIC_NMI_SIZE;
}

/* PCAT_COMPAT: KVM's in-kernel irqchip includes the two 8259s, which a
 * guest must mask before it uses the IOAPIC. */
static size_t build_madt(uint8_t *t, unsigned ncpus)
{
	size_t len = ACPI_MADT_ENTRIES;

	memset(t, 0, ACPI_MADT_MAX);
	put_le32(t + ACPI_MADT_LAPIC_ADDR, MPTABLE_LAPIC_ADDR);
	put_le32(t + ACPI_MADT_FLAGS, ACPI_MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < ncpus; i++)
		len += put_lapic(t + len, i);
	len += put_ioapic(t + len, (uint8_t)ncpus);
	len += put_irq0_override(t + len);
	len += put_lapic_nmi(t + len);
	finish_table(t, "APIC", len, ACPI_MADT_REV);
	return len;
}

int acpi_check_virtio_mmio(const struct boot_config *cfg, struct errmsg *err)
{
	if (cfg->nvirtio_mmio > BOOT_MAX_VIRTIO_MMIO)
		return errmsg_set(err, -E2BIG,
				  "%u virtio-mmio devices do not fit the DSDT (at most %u)",
				  cfg->nvirtio_mmio, BOOT_MAX_VIRTIO_MMIO);
	if (cfg->nvirtio_mmio && !cfg->virtio_mmio)
		return errmsg_set(err, -EINVAL, "virtio-mmio devices without a list");
	for (unsigned i = 0; i < cfg->nvirtio_mmio; i++) {
		const struct boot_virtio_mmio *d = &cfg->virtio_mmio[i];

		if (!d->size || d->base >= BOOT_4G || d->size > BOOT_4G - d->base)
			return errmsg_set(err, -EINVAL,
					  "virtio-mmio device %u at 0x%llx+0x%llx is not a range below 4 GiB",
					  i, (unsigned long long)d->base,
					  (unsigned long long)d->size);
		if (d->gsi >= ACPI_IOAPIC_PINS)
			return errmsg_set(err, -EINVAL,
					  "virtio-mmio device %u: GSI %u is not an IOAPIC input (0-%u)",
					  i, d->gsi, ACPI_IOAPIC_PINS - 1);
	}
	return 0;
}

int acpi_write(const struct guest_mem *m, const struct boot_config *cfg,
	       uint64_t *rsdp, struct errmsg *err)
{
	uint8_t rsdp_buf[ACPI_RSDP_SIZE], xsdt[ACPI_XSDT_SIZE];
	uint8_t fadt[ACPI_FADT_SIZE], dsdt[ACPI_DSDT_MAX];
	uint8_t madt[ACPI_MADT_MAX];
	size_t dsdt_len, madt_len;
	int ret;

	ret = acpi_check_ncpus(cfg->ncpus, err);
	if (!ret)
		ret = acpi_check_virtio_mmio(cfg, err);
	if (ret < 0)
		return ret;
	build_rsdp(rsdp_buf);
	build_xsdt(xsdt);
	build_fadt(fadt);
	dsdt_len = build_dsdt(dsdt, cfg);
	madt_len = build_madt(madt, cfg->ncpus);

	ret = boot_write(m, BOOT_ACPI_XSDT_ADDR, xsdt, sizeof(xsdt),
			 "ACPI XSDT", err);
	if (!ret)
		ret = boot_write(m, BOOT_ACPI_FADT_ADDR, fadt, sizeof(fadt),
				 "ACPI FADT", err);
	if (!ret)
		ret = boot_write(m, BOOT_ACPI_DSDT_ADDR, dsdt, dsdt_len,
				 "ACPI DSDT", err);
	if (!ret)
		ret = boot_write(m, BOOT_ACPI_MADT_ADDR, madt, madt_len,
				 "ACPI MADT", err);
	if (!ret)
		ret = boot_write(m, BOOT_ACPI_RSDP_ADDR, rsdp_buf,
				 sizeof(rsdp_buf), "ACPI RSDP", err);
	if (ret < 0)
		return ret;
	*rsdp = BOOT_ACPI_RSDP_ADDR;
	return 0;
}
