/*
 * Output on the PL011 the guest also uses (passed through: the hypervisor
 * writes whole lines to its data register, one CPU at a time), and the
 * small printf the hypervisor formats them with.
 */
#include "hv.h"

#define UART_DR 0x00
#define UART_FR 0x18
#define FR_TXFF (1u << 5)

static spinlock_t console_lock;
static atomic_bool panicking;

static void putc_raw(char c)
{
	volatile uint32_t *fr = (volatile uint32_t *)(UART_BASE + UART_FR);
	volatile uint32_t *dr = (volatile uint32_t *)(UART_BASE + UART_DR);

	while (*fr & FR_TXFF)
		;
	*dr = (uint32_t)(unsigned char)c;
}

static void put(char c)
{
	if (c == '\n')
		putc_raw('\r');
	putc_raw(c);
}

static void pad(int n, char c)
{
	while (n-- > 0)
		put(c);
}

struct spec {
	bool left, zero, alt;
	int width, prec;
};

static void out_str(const char *s, struct spec sp)
{
	int n = 0;

	if (!s)
		s = "(null)";
	while ((sp.prec < 0 || n < sp.prec) && s[n])
		n++;
	if (!sp.left)
		pad(sp.width - n, ' ');
	for (int i = 0; i < n; i++)
		put(s[i]);
	if (sp.left)
		pad(sp.width - n, ' ');
}

static void out_num(uint64_t v, bool neg, unsigned base, bool upper, struct spec sp)
{
	char buf[24];
	int n = 0;
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	int prefix = (sp.alt && base == 16) ? 2 : 0;

	do {
		buf[n++] = digits[v % base];
		v /= base;
	} while (v);
	int len = n + prefix + (neg ? 1 : 0);
	if (!sp.left && !sp.zero)
		pad(sp.width - len, ' ');
	if (neg)
		put('-');
	if (prefix) {
		put('0');
		put(upper ? 'X' : 'x');
	}
	if (!sp.left && sp.zero)
		pad(sp.width - len, '0');
	while (n)
		put(buf[--n]);
	if (sp.left)
		pad(sp.width - len, ' ');
}

static void format(const char *f, va_list ap)
{
	for (; *f; f++) {
		if (*f != '%') {
			put(*f);
			continue;
		}
		struct spec sp = { .prec = -1 };
		for (;; f++) {
			if (f[1] == '-')
				sp.left = true;
			else if (f[1] == '0')
				sp.zero = true;
			else if (f[1] == '#')
				sp.alt = true;
			else
				break;
		}
		f++;
		if (*f == '*') {
			sp.width = va_arg(ap, int);
			f++;
		}
		while (*f >= '0' && *f <= '9')
			sp.width = sp.width * 10 + (*f++ - '0');
		if (*f == '.') {
			f++;
			sp.prec = 0;
			if (*f == '*') {
				sp.prec = va_arg(ap, int);
				f++;
			}
			while (*f >= '0' && *f <= '9')
				sp.prec = sp.prec * 10 + (*f++ - '0');
		}
		int longs = 0;
		while (*f == 'l' || *f == 'z') {
			longs += *f == 'z' ? 2 : 1;
			f++;
		}
		switch (*f) {
		case 'd':
		case 'i': {
			int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
			out_num(v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, false, sp);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			out_num(v, false, *f == 'u' ? 10 : 16, *f == 'X', sp);
			break;
		}
		case 'p':
			sp.alt = true;
			out_num((uint64_t)(uintptr_t)va_arg(ap, void *), false, 16, false, sp);
			break;
		case 'c':
			put((char)va_arg(ap, int));
			break;
		case 's':
			out_str(va_arg(ap, const char *), sp);
			break;
		case '%':
			put('%');
			break;
		default:
			/* An unknown conversion prints as it is: a format bug shows. */
			put('%');
			if (!*f)
				return;
			put(*f);
		}
	}
}

void hv_vprintf(const char *fmt, va_list ap)
{
	bool locked = !atomic_load_explicit(&panicking, memory_order_relaxed);

	if (locked)
		spin_lock(&console_lock);
	format(fmt, ap);
	if (locked)
		spin_unlock(&console_lock);
}

void hv_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hv_vprintf(fmt, ap);
	va_end(ap);
}

void console_panicking(void)
{
	atomic_store_explicit(&panicking, true, memory_order_relaxed);
}
