// SPDX-License-Identifier: MIT
/*
 * virtio-mmio transport: discovery from the command line, the status
 * handshake and feature negotiation (guest/virtio_mmio.h).
 */
#include "guest/io.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/virtio_mmio.h"

#define SPEC_PREFIX "virtio_mmio.device="
#define RESET_TIMEOUT_NS NSEC_PER_SEC

static struct virtio_dev devices[VIRTIO_MAX_DEVICES];
static unsigned int nr_devices;
static bool discovered;

uint32_t virtio_read32(const struct virtio_dev *d, unsigned int reg)
{
	return mmio_read32(d->base + reg);
}

void virtio_write32(const struct virtio_dev *d, unsigned int reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

/* Parses a number in @base (10 or 16, "0x" accepted either way) up to
 * the first character that is not a digit; returns the end, or NULL if
 * there were no digits. */
static const char *parse_num(const char *s, unsigned int base, uint64_t *out)
{
	uint64_t v = 0;
	const char *start;
	int d;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	start = s;
	for (;; s++) {
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return NULL;
		v = v * base + d;
	}
	if (s == start)
		return NULL;
	*out = v;
	return s;
}

bool virtio_mmio_parse_spec(const char *spec, uint64_t *size, uint64_t *base,
			    unsigned int *irq)
{
	unsigned int shift = 0;
	uint64_t v;
	const char *p;

	p = parse_num(spec, 10, size);
	if (!p)
		return false;
	switch (*p) {
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	}
	if (shift && *size > (UINT64_MAX >> shift))
		return false;
	*size <<= shift;
	if (*p++ != '@')
		return false;
	/* Linux reads the base with base 0 (0x prefix); every VMM writes
	 * 0x, so hex is assumed either way. */
	p = parse_num(p, 16, base);
	if (!p || *p++ != ':')
		return false;
	p = parse_num(p, 10, &v);
	if (!p || v > 0xffff)
		return false;
	*irq = v;
	/* An optional ":<platform device id>" names the Linux device; it
	 * means nothing here. */
	if (*p == ':') {
		p = parse_num(p + 1, 10, &v);
		if (!p)
			return false;
	}
	return *p == '\0' && *size >= VIRTIO_MMIO_CONFIG && !(*base & 3);
}

unsigned int virtio_mmio_discover(const struct cmdline *c)
{
	const char *spec;
	struct virtio_dev *d;
	uint64_t size, base;
	unsigned int i, irq, seen = 0;
	uint32_t magic;

	if (discovered)
		return nr_devices;
	discovered = true;
	for (i = 0; i < c->nr_foreign; i++) {
		if (strncmp(c->foreign[i], SPEC_PREFIX, strlen(SPEC_PREFIX)))
			continue;
		spec = c->foreign[i] + strlen(SPEC_PREFIX);
		seen++;
		if (!virtio_mmio_parse_spec(spec, &size, &base, &irq)) {
			uart_printf("virtio: malformed %s\n", c->foreign[i]);
			continue;
		}
		if (base >= (4ull << 30)) {
			/* Only the low 4 GiB are sure to be mapped. */
			uart_printf("virtio: 0x%llx above 4 GiB, ignored\n",
				    (unsigned long long)base);
			continue;
		}
		if (nr_devices == VIRTIO_MAX_DEVICES) {
			uart_printf("virtio: more than %d devices, rest ignored\n",
				    VIRTIO_MAX_DEVICES);
			break;
		}
		d = &devices[nr_devices];
		memset(d, 0, sizeof(*d));
		d->base = base;
		d->size = size;
		d->irq = irq;
		magic = virtio_read32(d, VIRTIO_MMIO_MAGIC);
		if (magic != VIRTIO_MMIO_MAGIC_VALUE) {
			uart_printf("virtio: 0x%llx: bad magic 0x%x, ignored\n",
				    (unsigned long long)base, magic);
			continue;
		}
		d->version = virtio_read32(d, VIRTIO_MMIO_VERSION);
		d->device_id = virtio_read32(d, VIRTIO_MMIO_DEVICE_ID);
		d->vendor_id = virtio_read32(d, VIRTIO_MMIO_VENDOR_ID);
		/* ID 0 is an empty transport slot (QEMU has many). */
		if (d->device_id == 0)
			continue;
		uart_printf("virtio: %s: device %u version %u vendor 0x%x\n",
			    c->foreign[i], d->device_id, d->version,
			    d->vendor_id);
		nr_devices++;
	}
	if (!seen)
		uart_printf("virtio: no virtio_mmio.device= entries on the "
			    "command line\n");
	return nr_devices;
}

struct virtio_dev *virtio_find(uint32_t device_id, unsigned int nth)
{
	unsigned int i;

	for (i = 0; i < nr_devices; i++) {
		if (devices[i].device_id == device_id && nth-- == 0)
			return &devices[i];
	}
	return NULL;
}

void virtio_list_devices(void)
{
	const struct virtio_dev *d;
	unsigned int i;

	for (i = 0; i < nr_devices; i++) {
		d = &devices[i];
		uart_printf("virtio: device %u at 0x%llx size 0x%llx irq %u "
			    "version %u vendor 0x%x\n", d->device_id,
			    (unsigned long long)d->base,
			    (unsigned long long)d->size, d->irq, d->version,
			    d->vendor_id);
	}
}

int virtio_dev_reset(struct virtio_dev *d)
{
	uint64_t deadline;

	virtio_write32(d, VIRTIO_MMIO_STATUS, 0);
	/* The reset is complete when Status reads back 0 (4.2.3.1.1);
	 * a device that never gets there is reported, not waited on. */
	deadline = rdtsc() + ns_to_tsc(RESET_TIMEOUT_NS);
	while (virtio_read32(d, VIRTIO_MMIO_STATUS) != 0) {
		if (rdtsc() > deadline) {
			uart_printf("virtio: device %u at 0x%llx: still not "
				    "reset after 1 s\n", d->device_id,
				    (unsigned long long)d->base);
			return -VIRTIO_ETIMEDOUT;
		}
		cpu_relax();
	}
	return 0;
}

static void set_status(struct virtio_dev *d, uint32_t bits)
{
	virtio_write32(d, VIRTIO_MMIO_STATUS,
		       virtio_read32(d, VIRTIO_MMIO_STATUS) | bits);
}

static uint64_t read_device_features(struct virtio_dev *d)
{
	uint64_t f;

	virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	f = (uint64_t)virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	return f | virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES);
}

static void write_driver_features(struct virtio_dev *d, uint64_t f)
{
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, f >> 32);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
}

static int init_failed(struct virtio_dev *d, int err, const char *why)
{
	uart_printf("virtio: device %u at 0x%llx: %s\n", d->device_id,
		    (unsigned long long)d->base, why);
	if (err != -VIRTIO_ELEGACY)
		set_status(d, VIRTIO_STATUS_FAILED);
	return err;
}

int virtio_dev_init(struct virtio_dev *d, uint64_t wanted, uint64_t required)
{
	uint64_t offer;

	if (d->version == VIRTIO_MMIO_VERSION_LEGACY)
		return init_failed(d, -VIRTIO_ELEGACY,
				   "legacy virtio-mmio (version 1) is not "
				   "supported; use a modern (version 2) "
				   "transport (QEMU: -global "
				   "virtio-mmio.force-legacy=false)");
	if (d->version != VIRTIO_MMIO_VERSION_MODERN)
		return init_failed(d, -VIRTIO_ENODEV,
				   "unknown virtio-mmio version");

	if (virtio_dev_reset(d))
		return -VIRTIO_ETIMEDOUT;
	set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(d, VIRTIO_STATUS_DRIVER);

	d->device_features = read_device_features(d);
	required |= VIRTIO_BIT(VIRTIO_F_VERSION_1);
	if ((d->device_features & required) != required)
		return init_failed(d, -VIRTIO_EFEATURES,
				   "device lacks a required feature");
	offer = d->device_features & (wanted | required);
	write_driver_features(d, offer);
	set_status(d, VIRTIO_STATUS_FEATURES_OK);
	/* The device may refuse the subset: it then leaves FEATURES_OK
	 * clear (3.1.1 step 6). */
	if (!(virtio_read32(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		return init_failed(d, -VIRTIO_EFEATURES,
				   "device did not accept the features");
	d->features = offer;
	d->claimed = true;
	return 0;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	set_status(d, VIRTIO_STATUS_DRIVER_OK);
}

bool virtio_needs_reset(struct virtio_dev *d)
{
	uint32_t status = virtio_read32(d, VIRTIO_MMIO_STATUS);

	if (!(status & VIRTIO_STATUS_NEEDS_RESET))
		return false;
	uart_printf("virtio: device %u at 0x%llx set DEVICE_NEEDS_RESET "
		    "(status 0x%x)\n", d->device_id,
		    (unsigned long long)d->base, status);
	return true;
}

static uint8_t config_read8(const struct virtio_dev *d, unsigned int off)
{
	return *(volatile uint8_t *)(d->base + VIRTIO_MMIO_CONFIG + off);
}

static uint16_t config_read16(const struct virtio_dev *d, unsigned int off)
{
	return *(volatile uint16_t *)(d->base + VIRTIO_MMIO_CONFIG + off);
}

void virtio_config_read(const struct virtio_dev *d, unsigned int offset,
			void *buf, unsigned int len)
{
	uint32_t before, after, v32;
	unsigned int off, n;
	uint16_t v16;
	uint8_t *out = buf;

	do {
		before = virtio_read32(d, VIRTIO_MMIO_CONFIG_GENERATION);
		/* Natural-size accesses: the widest the alignment allows. */
		for (off = offset; off < offset + len; off += n) {
			n = offset + len - off;
			if (!(off & 3) && n >= 4) {
				n = 4;
				v32 = virtio_read32(d, VIRTIO_MMIO_CONFIG + off);
				memcpy(out + off - offset, &v32, 4);
			} else if (!(off & 1) && n >= 2) {
				n = 2;
				v16 = config_read16(d, off);
				memcpy(out + off - offset, &v16, 2);
			} else {
				n = 1;
				out[off - offset] = config_read8(d, off);
			}
		}
		after = virtio_read32(d, VIRTIO_MMIO_CONFIG_GENERATION);
	} while (before != after);
}

void virtio_config_write8(const struct virtio_dev *d, unsigned int offset,
			  uint8_t v)
{
	*(volatile uint8_t *)(d->base + VIRTIO_MMIO_CONFIG + offset) = v;
}

const char *virtio_strerror(int err)
{
	switch (-err) {
	case 0: return "success";
	case VIRTIO_ENODEV: return "no such device";
	case VIRTIO_ELEGACY: return "legacy transport";
	case VIRTIO_EFEATURES: return "feature negotiation failed";
	case VIRTIO_EQUEUE: return "queue unavailable";
	case VIRTIO_ERESET: return "device needs reset";
	case VIRTIO_ETIMEDOUT: return "timed out";
	case VIRTIO_ENOSPC: return "queue full";
	case VIRTIO_EINVAL: return "invalid argument";
	case VIRTIO_EIO: return "I/O error";
	}
	return "unknown error";
}
