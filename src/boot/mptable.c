// SPDX-License-Identifier: MIT
#include "boot/mptable.h"

#include <errno.h>
#include <string.h>

#include "boot/layout.h"
#include "boot/loader.h"

/* Entry types and sizes from the MP spec, chapter 4. */
#define MP_FLOAT_SIZE 16
#define MP_HEADER_SIZE 44
#define MP_PROC_SIZE 20
#define MP_SMALL_ENTRY_SIZE 8	/* bus, IOAPIC, I/O and local interrupt */

#define MP_ENTRY_PROCESSOR 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT 3
#define MP_ENTRY_LINT 4

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_INT_TYPE_INT 0
#define MP_INT_TYPE_NMI 1
#define MP_INT_TYPE_EXTINT 3
#define MP_ISA_BUS_ID 0
#define MP_ISA_IRQS 16
#define MP_ISA_CASCADE_IRQ 2	/* the slave PIC; no IOAPIC pin of its own */
#define MP_LAPIC_ALL 0xFF

/* Family 6 and FPU|APIC feature bits: what a guest expects from a modern
 * CPU; Linux only uses these for printing. */
#define MP_CPU_SIGNATURE 0x600
#define MP_CPU_FEATURES 0x201

#define MP_TABLE_MAX (MP_HEADER_SIZE + MPTABLE_MAX_CPUS * MP_PROC_SIZE + \
		      (2 + MP_ISA_IRQS + 2) * MP_SMALL_ENTRY_SIZE)

/* The value that makes the bytes of [p, p+len) sum to zero. */
static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

static size_t put_processor(uint8_t *p, unsigned id)
{
	memset(p, 0, MP_PROC_SIZE);
	p[0] = MP_ENTRY_PROCESSOR;
	p[1] = (uint8_t)id;
	p[2] = MPTABLE_LAPIC_VERSION;
	p[3] = MP_CPU_ENABLED | (id == 0 ? MP_CPU_BSP : 0);
	put_le32(p + 4, MP_CPU_SIGNATURE);
	put_le32(p + 8, MP_CPU_FEATURES);
	return MP_PROC_SIZE;
}

static size_t put_isa_bus(uint8_t *p)
{
	p[0] = MP_ENTRY_BUS;
	p[1] = MP_ISA_BUS_ID;
	memcpy(p + 2, "ISA   ", 6);
	return MP_SMALL_ENTRY_SIZE;
}

static size_t put_ioapic(uint8_t *p, uint8_t id)
{
	p[0] = MP_ENTRY_IOAPIC;
	p[1] = id;
	p[2] = MPTABLE_IOAPIC_VERSION;
	p[3] = 1;	/* enabled */
	put_le32(p + 4, MPTABLE_IOAPIC_ADDR);
	return MP_SMALL_ENTRY_SIZE;
}

/* I/O and local interrupt entries share one layout. Flags 0 means
 * "conforms to the bus": edge-triggered, active high for ISA. */
static size_t put_interrupt(uint8_t *p, uint8_t entry, uint8_t int_type,
			    uint8_t src_irq, uint8_t dst_id, uint8_t dst_pin)
{
	p[0] = entry;
	p[1] = int_type;
	put_le16(p + 2, 0);
	p[4] = MP_ISA_BUS_ID;
	p[5] = src_irq;
	p[6] = dst_id;
	p[7] = dst_pin;
	return MP_SMALL_ENTRY_SIZE;
}

/* Builds the configuration table into @t; returns its length and the
 * number of entries in @count. */
static size_t build_config_table(uint8_t *t, unsigned ncpus, uint16_t *count)
{
	uint8_t ioapic_id = (uint8_t)ncpus;
	size_t len = MP_HEADER_SIZE;
	unsigned n = 0;

	for (unsigned i = 0; i < ncpus; i++, n++)
		len += put_processor(t + len, i);
	len += put_isa_bus(t + len);
	n++;
	len += put_ioapic(t + len, ioapic_id);
	n++;
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++) {
		/* PC wiring: the PIT's IRQ0 is on IOAPIC pin 2 (the ISA
		 * override), so pin 2 is not also given to the cascade. */
		if (irq == MP_ISA_CASCADE_IRQ)
			continue;
		len += put_interrupt(t + len, MP_ENTRY_IOINT, MP_INT_TYPE_INT,
				     (uint8_t)irq, ioapic_id,
				     irq == 0 ? 2 : (uint8_t)irq);
		n++;
	}
	len += put_interrupt(t + len, MP_ENTRY_LINT, MP_INT_TYPE_EXTINT, 0,
			     MP_LAPIC_ALL, 0);
	n++;
	len += put_interrupt(t + len, MP_ENTRY_LINT, MP_INT_TYPE_NMI, 0,
			     MP_LAPIC_ALL, 1);
	n++;
	*count = (uint16_t)n;
	return len;
}

static void fill_config_header(uint8_t *t, size_t len, uint16_t count)
{
	memcpy(t, "PCMP", 4);
	put_le16(t + 4, (uint16_t)len);
	t[6] = 4;	/* spec revision 1.4 */
	t[7] = 0;	/* checksum, below */
	memcpy(t + 8, "RACKVM  ", 8);
	memcpy(t + 16, "RACKVM-MP   ", 12);
	put_le32(t + 28, 0);	/* no OEM table */
	put_le16(t + 32, 0);
	put_le16(t + 34, count);
	put_le32(t + 36, MPTABLE_LAPIC_ADDR);
	put_le16(t + 40, 0);	/* no extended table */
	t[42] = 0;
	t[43] = 0;
	t[7] = mp_checksum(t, len);
}

static void fill_floating_pointer(uint8_t *f, uint32_t table_addr)
{
	memset(f, 0, MP_FLOAT_SIZE);
	memcpy(f, "_MP_", 4);
	put_le32(f + 4, table_addr);
	f[8] = 1;	/* length in 16-byte units */
	f[9] = 4;	/* spec revision 1.4 */
	/* feature byte 1 = 0: a configuration table is present; feature
	 * byte 2 = 0: virtual-wire mode, no IMCR to program */
	f[10] = mp_checksum(f, MP_FLOAT_SIZE);
}

int mptable_write(const struct guest_mem *m, unsigned ncpus,
		  struct errmsg *err)
{
	uint8_t floating[MP_FLOAT_SIZE];
	uint8_t table[MP_TABLE_MAX] = { 0 };
	uint64_t table_addr = BOOT_BIOS_START + MP_FLOAT_SIZE;
	uint16_t count;
	size_t len;
	int ret;

	ret = boot_check_ncpus(ncpus, "MP table", err);
	if (ret < 0)
		return ret;
	len = build_config_table(table, ncpus, &count);
	fill_config_header(table, len, count);
	fill_floating_pointer(floating, (uint32_t)table_addr);
	ret = boot_write(m, BOOT_BIOS_START, floating, sizeof(floating),
			 "MP floating pointer", err);
	if (ret < 0)
		return ret;
	return boot_write(m, table_addr, table, len, "MP configuration table",
			  err);
}
