/*
 * test_elfsym.c - the ELF symbol reader of core/elfsym.c (linked from the
 * core library: its functions are hidden).
 *
 * Real files: a static function of this very program, found through
 * /proc/self/exe and the load bias dl_iterate_phdr reports, is named with
 * its offset, and so is a libc function from libc's own file; `defines`
 * sees this program's static function and main, libc's malloc, and not a
 * function this program only calls.
 *
 * Made-up files: a small ELF image built here (nested, aliased, zero-sized
 * and non-function symbols, an SHT_NOBITS section whose offset is past the
 * end of the file) gives exact answers; every way of breaking its headers
 * (offsets past the end or wrapping, a bad link, an unterminated string
 * table, a name past its end, extended numbering, 32-bit, big-endian,
 * ET_REL) is refused with NULL; every truncation of it and thousands of
 * random corruptions neither crash nor read outside the file (run it under
 * ASan to see the latter).  An empty file, a short header, random bytes, a
 * directory, a FIFO and a missing path are refused too.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"
#include "util.h"

/* ------------------------------------------------------------ helpers */

static char tmpdir[PATH_MAX];

static void make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/ss-elfsym-XXXXXX",
	         t && *t ? t : "/tmp");
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

/* Remove tmpdir and the plain files in it (Check's fork mode runs this in
 * the test's own process, also after a failed assertion). */
static void remove_tmpdir(void)
{
	char path[PATH_MAX + 256];
	struct dirent *d;
	DIR *dir;

	if (tmpdir[0] == '\0' || (dir = opendir(tmpdir)) == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, d->d_name);
		if (unlink(path) != 0)
			rmdir(path);
	}
	closedir(dir);
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

/* Write len bytes of buf to tmpdir/name; returns the path (static). */
static const char *put_file(const char *name, const void *buf, size_t len)
{
	static char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	/* A new file each time, not O_TRUNC: ext4 flushes a file truncated
	 * and rewritten at close (auto_da_alloc), which would make the
	 * thousands of images below take seconds. */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg(len == 0 || write(fd, buf, len) == (ssize_t)len,
	              "write %s: %s", path, strerror(errno));
	close(fd);
	return path;
}

static void *guard;
static size_t guard_len;

/*
 * Open the image buf as a file, with an inaccessible page just above its
 * mapping, in all likelihood: Linux places a new mapping at the top of the
 * highest gap that fits, right below the lowest mapping so far, which is
 * the guard mapped just before.  ASan does not see reads of a file
 * mapping, so this is what turns a read past the end of the file (past
 * the end of its last page) into a crash.
 */
static struct ss_elf *open_image(const void *buf, size_t len)
{
	const char *path = put_file("image", buf, len);

	guard_len = (size_t)sysconf(_SC_PAGESIZE);
	guard = mmap(NULL, guard_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert(guard != MAP_FAILED);
	return ss__elf_open(path);
}

static void close_image(struct ss_elf *e)
{
	ss__elf_close(e);
	munmap(guard, guard_len);
}

/* Ask every question of e over [lo, hi), to make a corrupt table show
 * itself under ASan; the answers do not matter. */
static void exercise(const struct ss_elf *e, uint64_t lo, uint64_t hi)
{
	static const char *const names[] = {
		"alpha", "beta", "outer", "memcpy", "zsym", "", "x",
	};
	char name[64];
	uintptr_t off;
	uint64_t a;
	size_t i;

	for (a = lo; a < hi; a += 7)
		(void)ss__elf_symbolize(e, (uintptr_t)a, name, sizeof(name), &off);
	(void)ss__elf_symbolize(e, 0, name, sizeof(name), &off);
	(void)ss__elf_symbolize(e, UINTPTR_MAX, name, sizeof(name), &off);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		(void)ss__elf_defines(e, names[i]);
}

/* xorshift64: a fixed sequence, so a failure can be replayed. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ------------------------------------------------------ a made-up ELF */

/*
 * Layout of the image (ET_DYN, ELFCLASS64, host byte order):
 *   0       ELF header
 *   0x100   string table (.strtab)
 *   0x200   symbol table (.symtab), NSYMS entries
 *   0x600   section headers: null, .text, .bss, .symtab, .strtab
 *   0x1000  .text contents, addresses 0x1000..0x2000
 * Size 0x2000.
 */
#define IMG_SIZE 0x2000
#define STR_OFF 0x100
#define SYM_OFF 0x200
#define SH_OFF 0x600
#define TEXT_OFF 0x1000
#define SEC_TEXT 1
#define SEC_BSS 2
#define SEC_SYMTAB 3
#define SEC_STRTAB 4
#define NSECS 5

struct isym {
	const char *name;
	unsigned type, bind;
	unsigned shndx;
	uint64_t value, size;
};

/* Symbol 0 is the null symbol, added by build_image. */
static const struct isym isyms[] = {
	{ "alpha", STT_FUNC, STB_GLOBAL, SEC_TEXT, 0x1000, 0x10 },
	{ "__alpha_alias", STT_FUNC, STB_GLOBAL, SEC_TEXT, 0x1000, 0x10 },
	{ "beta", STT_FUNC, STB_LOCAL, SEC_TEXT, 0x1020, 0x10 },
	{ "weak_beta", STT_FUNC, STB_WEAK, SEC_TEXT, 0x1020, 0x10 },
	{ "zbeta", STT_FUNC, STB_GLOBAL, SEC_TEXT, 0x1020, 0 },
	{ "outer", STT_FUNC, STB_GLOBAL, SEC_TEXT, 0x1100, 0x100 },
	{ "inner", STT_NOTYPE, STB_LOCAL, SEC_TEXT, 0x1140, 0x10 },
	{ "data", STT_OBJECT, STB_GLOBAL, SEC_TEXT, 0x1300, 0x10 },
	{ "label", STT_NOTYPE, STB_LOCAL, SEC_TEXT, 0x1400, 0 },
	{ "memcpy@@V2", STT_FUNC, STB_GLOBAL, SEC_TEXT, 0x1500, 0x10 },
	{ "huge", STT_FUNC, STB_GLOBAL, SEC_TEXT, 0x1600, UINT64_MAX },
	{ "zsym", STT_FUNC, STB_GLOBAL, SEC_TEXT, 0x1800, 0 },
	{ "undef", STT_FUNC, STB_GLOBAL, SHN_UNDEF, 0, 0 },
	{ "abs_zero", STT_FUNC, STB_GLOBAL, SHN_ABS, 0x1c00, 0 },
};
#define NSYMS (1 + sizeof(isyms) / sizeof(isyms[0]))

static unsigned char img[IMG_SIZE];
static size_t strtab_size;

static Elf64_Ehdr *ehdr(void)
{
	return (Elf64_Ehdr *)img;
}

static Elf64_Shdr *shdr(unsigned i)
{
	return (Elf64_Shdr *)(img + SH_OFF) + i;
}

static Elf64_Sym *sym(unsigned i)
{
	return (Elf64_Sym *)(img + SYM_OFF) + i;
}

static void build_image(void)
{
	Elf64_Ehdr *eh = ehdr();
	size_t i, pos = 1;

	memset(img, 0, sizeof(img));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ?
	                       ELFDATA2LSB : ELFDATA2MSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_DYN;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_shoff = SH_OFF;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = NSECS;
	eh->e_shstrndx = SHN_UNDEF; /* no section names: none are needed */

	for (i = 1; i < NSYMS; i++) {
		const struct isym *s = &isyms[i - 1];
		size_t n = strlen(s->name) + 1;

		ck_assert_uint_le(STR_OFF + pos + n, SYM_OFF);
		memcpy(img + STR_OFF + pos, s->name, n);
		sym(i)->st_name = (Elf64_Word)pos;
		sym(i)->st_info = ELF64_ST_INFO(s->bind, s->type);
		sym(i)->st_shndx = (Elf64_Section)s->shndx;
		sym(i)->st_value = s->value;
		sym(i)->st_size = s->size;
		pos += n;
	}
	strtab_size = pos;
	ck_assert_uint_le(SYM_OFF + NSYMS * sizeof(Elf64_Sym), SH_OFF);

	shdr(SEC_TEXT)->sh_type = SHT_PROGBITS;
	shdr(SEC_TEXT)->sh_flags = SHF_ALLOC | SHF_EXECINSTR;
	shdr(SEC_TEXT)->sh_addr = 0x1000;
	shdr(SEC_TEXT)->sh_offset = TEXT_OFF;
	shdr(SEC_TEXT)->sh_size = 0x1000;
	/* Occupies no file space: an offset far past the end is fine. */
	shdr(SEC_BSS)->sh_type = SHT_NOBITS;
	shdr(SEC_BSS)->sh_flags = SHF_ALLOC | SHF_WRITE;
	shdr(SEC_BSS)->sh_addr = 0x2000;
	shdr(SEC_BSS)->sh_offset = UINT64_MAX - 0x10;
	shdr(SEC_BSS)->sh_size = 1ull << 40;
	shdr(SEC_SYMTAB)->sh_type = SHT_SYMTAB;
	shdr(SEC_SYMTAB)->sh_offset = SYM_OFF;
	shdr(SEC_SYMTAB)->sh_size = NSYMS * sizeof(Elf64_Sym);
	shdr(SEC_SYMTAB)->sh_entsize = sizeof(Elf64_Sym);
	shdr(SEC_SYMTAB)->sh_link = SEC_STRTAB;
	shdr(SEC_SYMTAB)->sh_info = 1;
	shdr(SEC_STRTAB)->sh_type = SHT_STRTAB;
	shdr(SEC_STRTAB)->sh_offset = STR_OFF;
	shdr(SEC_STRTAB)->sh_size = strtab_size;
	ck_assert_uint_le(SH_OFF + NSECS * sizeof(Elf64_Shdr), TEXT_OFF);
}

struct expect {
	uint64_t addr;
	const char *name; /* NULL: no symbol */
	uint64_t off;
};

static const struct expect image_answers[] = {
	{ 0x0fff, NULL, 0 },            /* below every symbol */
	{ 0x1000, "alpha", 0 },         /* global alias without underscores */
	{ 0x100f, "alpha", 0xf },
	{ 0x1010, NULL, 0 },            /* the end is exclusive */
	{ 0x1015, NULL, 0 },            /* padding between functions */
	{ 0x1020, "weak_beta", 0 },     /* weak beats local */
	{ 0x1025, "weak_beta", 5 },
	{ 0x1035, NULL, 0 },            /* zbeta starts with a sized one */
	{ 0x1100, "outer", 0 },
	{ 0x1145, "inner", 5 },         /* nested: the innermost */
	{ 0x1150, "outer", 0x50 },      /* past inner, still in outer */
	{ 0x11ff, "outer", 0xff },
	{ 0x1200, NULL, 0 },
	{ 0x1305, NULL, 0 },            /* an object, not a function */
	{ 0x1400, NULL, 0 },            /* zero-sized NOTYPE: not a guess */
	{ 0x1505, "memcpy@@V2", 5 },
	{ 0x1650, NULL, 0 },            /* a size that wraps is ignored */
	{ 0x1800, "zsym", 0 },          /* zero-sized: the nearest below... */
	{ 0x1fff, "zsym", 0x7ff },
	{ 0x2000, NULL, 0 },            /* ...within its section only */
	{ 0x1c00, "zsym", 0x400 },      /* abs_zero has no section */
	{ UINT64_MAX, NULL, 0 },
};

static void check_answers(const struct ss_elf *e)
{
	char name[64];
	uintptr_t off;
	size_t i;
	int r;

	for (i = 0; i < sizeof(image_answers) / sizeof(image_answers[0]); i++) {
		const struct expect *x = &image_answers[i];

		off = 12345;
		strcpy(name, "unchanged");
		r = ss__elf_symbolize(e, (uintptr_t)x->addr, name, sizeof(name), &off);
		if (x->name == NULL) {
			ck_assert_msg(r == -1, "%#llx: expected nothing, got %s+%#lx",
			              (unsigned long long)x->addr, name,
			              (unsigned long)off);
			continue;
		}
		ck_assert_msg(r == 0, "%#llx: expected %s, got nothing",
		              (unsigned long long)x->addr, x->name);
		ck_assert_msg(strcmp(name, x->name) == 0 && off == x->off,
		              "%#llx: expected %s+%#llx, got %s+%#lx",
		              (unsigned long long)x->addr, x->name,
		              (unsigned long long)x->off, name, (unsigned long)off);
	}
}

START_TEST(image_symbolize)
{
	struct ss_elf *e;
	uintptr_t off;
	char name[8];

	make_tmpdir();
	build_image();
	e = open_image(img, sizeof(img));
	ck_assert_msg(e != NULL, "the made-up image is refused: %s", strerror(errno));
	check_answers(e);

	/* Truncated to len - 1 bytes, NUL-terminated; len 0 writes nothing;
	 * off may be NULL. */
	memset(name, 'x', sizeof(name));
	ck_assert_int_eq(ss__elf_symbolize(e, 0x1505, name, 4, &off), 0);
	ck_assert_str_eq(name, "mem");
	ck_assert_int_eq(name[4], 'x');
	ck_assert_int_eq(off, 5);
	memset(name, 'x', sizeof(name));
	ck_assert_int_eq(ss__elf_symbolize(e, 0x1505, name, 0, NULL), 0);
	ck_assert_int_eq(name[0], 'x');
	ck_assert_int_eq(ss__elf_symbolize(e, 0x1000, name, 1, NULL), 0);
	ck_assert_str_eq(name, "");
	close_image(e);
	ss__elf_close(NULL);
	remove_tmpdir();
}
END_TEST

START_TEST(image_defines)
{
	static const struct {
		const char *name;
		int yes;
	} q[] = {
		{ "alpha", 1 }, { "__alpha_alias", 1 }, { "beta", 1 },
		{ "weak_beta", 1 }, { "zsym", 1 }, { "outer", 1 },
		{ "memcpy", 1 },      /* matches memcpy@@V2 */
		{ "memcpy@@V2", 1 },
		{ "memcp", 0 }, { "memcpy@", 0 },
		{ "inner", 0 },       /* NOTYPE: not a function */
		{ "data", 0 },        /* an object */
		{ "label", 0 },
		{ "undef", 0 },       /* SHN_UNDEF: not a definition */
		{ "", 0 }, { "no_such_symbol", 0 }, { "alphabet", 0 },
	};
	struct ss_elf *e;
	size_t i;

	make_tmpdir();
	build_image();
	e = open_image(img, sizeof(img));
	ck_assert_ptr_nonnull(e);
	for (i = 0; i < sizeof(q) / sizeof(q[0]); i++)
		ck_assert_msg(ss__elf_defines(e, q[i].name) == q[i].yes,
		              "defines(\"%s\") should be %d", q[i].name, q[i].yes);
	ck_assert_int_eq(ss__elf_defines(e, NULL), 0);
	close_image(e);
	remove_tmpdir();
}
END_TEST

/* The same symbols as .dynsym (a stripped file) answer the same. */
START_TEST(image_dynsym_only)
{
	struct ss_elf *e;

	make_tmpdir();
	build_image();
	shdr(SEC_SYMTAB)->sh_type = SHT_DYNSYM;
	e = open_image(img, sizeof(img));
	ck_assert_ptr_nonnull(e);
	check_answers(e);
	ck_assert_int_eq(ss__elf_defines(e, "beta"), 1);
	close_image(e);
	remove_tmpdir();
}
END_TEST

/* Valid files with nothing to find: no section headers at all (sstrip),
 * or sections but no symbol table. */
START_TEST(image_without_symbols)
{
	struct ss_elf *e;
	char name[16];
	uintptr_t off;

	make_tmpdir();
	build_image();
	ehdr()->e_shoff = 0;
	ehdr()->e_shnum = 0;
	e = open_image(img, sizeof(img));
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(ss__elf_symbolize(e, 0x1000, name, sizeof(name), &off), -1);
	ck_assert_int_eq(ss__elf_defines(e, "alpha"), 0);
	close_image(e);

	build_image();
	shdr(SEC_SYMTAB)->sh_type = SHT_PROGBITS;
	e = open_image(img, sizeof(img));
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(ss__elf_symbolize(e, 0x1000, name, sizeof(name), &off), -1);
	ck_assert_int_eq(ss__elf_defines(e, "alpha"), 0);
	close_image(e);
	remove_tmpdir();
}
END_TEST

/* One way of breaking the image, applied to a fresh copy. */
struct breakage {
	const char *what;
	void (*apply)(void);
};

static void sec_past_end(void) { shdr(SEC_TEXT)->sh_offset = IMG_SIZE + 1; }
static void sec_size_past_end(void) { shdr(SEC_TEXT)->sh_size = IMG_SIZE; }
static void sec_wraps(void) { shdr(SEC_TEXT)->sh_offset = UINT64_MAX - 0x10; }
static void symtab_past_end(void) { shdr(SEC_SYMTAB)->sh_offset = IMG_SIZE - 24; }
static void symtab_wraps(void) { shdr(SEC_SYMTAB)->sh_size = UINT64_MAX - SYM_OFF + 2; }
static void symtab_entsize(void) { shdr(SEC_SYMTAB)->sh_entsize = 16; }
static void symtab_partial(void) { shdr(SEC_SYMTAB)->sh_size -= 1; }
static void strtab_past_end(void) { shdr(SEC_STRTAB)->sh_size = UINT64_MAX; }
static void strtab_unterminated(void) { shdr(SEC_STRTAB)->sh_size = strtab_size - 1; }
static void strtab_empty(void) { shdr(SEC_STRTAB)->sh_size = 0; }
static void link_out_of_range(void) { shdr(SEC_SYMTAB)->sh_link = NSECS; }
static void link_huge(void) { shdr(SEC_SYMTAB)->sh_link = UINT32_MAX; }
static void link_to_null(void) { shdr(SEC_SYMTAB)->sh_link = 0; }
static void link_to_nobits(void) { shdr(SEC_SYMTAB)->sh_link = SEC_BSS; }
static void link_to_self(void) { shdr(SEC_SYMTAB)->sh_link = SEC_SYMTAB; }
static void name_past_strtab(void) { sym(3)->st_name = (Elf64_Word)strtab_size; }
static void name_huge(void) { sym(NSYMS - 1)->st_name = UINT32_MAX; }
static void shoff_past_end(void) { ehdr()->e_shoff = IMG_SIZE; }
static void shoff_wraps(void) { ehdr()->e_shoff = UINT64_MAX - 8; }
static void shnum_past_end(void) { ehdr()->e_shnum = 0xff00; }
static void shnum_extended(void) { ehdr()->e_shnum = 0; }
static void shnum_without_shoff(void) { ehdr()->e_shoff = 0; }
static void shentsize(void) { ehdr()->e_shentsize = 32; }
static void shstrndx_xindex(void) { ehdr()->e_shstrndx = SHN_XINDEX; }
static void class32(void) { ehdr()->e_ident[EI_CLASS] = ELFCLASS32; }
static void class_none(void) { ehdr()->e_ident[EI_CLASS] = ELFCLASSNONE; }
static void other_endian(void)
{
	ehdr()->e_ident[EI_DATA] = ehdr()->e_ident[EI_DATA] == ELFDATA2LSB ?
	                           ELFDATA2MSB : ELFDATA2LSB;
}
static void bad_version(void) { ehdr()->e_ident[EI_VERSION] = 0; }
static void bad_magic(void) { ehdr()->e_ident[EI_MAG1] = 'e'; }
static void type_rel(void) { ehdr()->e_type = ET_REL; }
static void type_core(void) { ehdr()->e_type = ET_CORE; }

static const struct breakage breakages[] = {
	{ "a section's offset past the end", sec_past_end },
	{ "a section's size past the end", sec_size_past_end },
	{ "a section's offset + size wrapping", sec_wraps },
	{ "the symbol table past the end", symtab_past_end },
	{ "the symbol table's size wrapping", symtab_wraps },
	{ "a symbol entry size of 16", symtab_entsize },
	{ "a partial symbol entry", symtab_partial },
	{ "the string table past the end", strtab_past_end },
	{ "an unterminated string table", strtab_unterminated },
	{ "an empty string table", strtab_empty },
	{ "sh_link out of range", link_out_of_range },
	{ "sh_link 2^32-1", link_huge },
	{ "sh_link to the null section", link_to_null },
	{ "sh_link to an SHT_NOBITS section", link_to_nobits },
	{ "sh_link to the symbol table", link_to_self },
	{ "a name just past the string table", name_past_strtab },
	{ "a name at 2^32-1", name_huge },
	{ "e_shoff past the end", shoff_past_end },
	{ "e_shoff wrapping", shoff_wraps },
	{ "e_shnum past the end", shnum_past_end },
	{ "extended section numbering", shnum_extended },
	{ "e_shnum without e_shoff", shnum_without_shoff },
	{ "e_shentsize 32", shentsize },
	{ "e_shstrndx SHN_XINDEX", shstrndx_xindex },
	{ "ELFCLASS32", class32 },
	{ "ELFCLASSNONE", class_none },
	{ "the other byte order", other_endian },
	{ "EI_VERSION 0", bad_version },
	{ "bad magic", bad_magic },
	{ "ET_REL", type_rel },
	{ "ET_CORE", type_core },
};

START_TEST(image_malformed_refused)
{
	const struct breakage *b = &breakages[_i];
	struct ss_elf *e;

	make_tmpdir();
	build_image();
	b->apply();
	errno = 0;
	e = open_image(img, sizeof(img));
	ck_assert_msg(e == NULL, "an image with %s is accepted", b->what);
	close_image(e);
	ck_assert_int_eq(errno, ENOEXEC);
	remove_tmpdir();
}
END_TEST

/* Every prefix of the image: refused, or (never, here: the section
 * headers come late) read without a fault. */
START_TEST(image_truncated)
{
	struct ss_elf *e;
	size_t n;

	make_tmpdir();
	build_image();
	for (n = 0; n < sizeof(img); n++) {
		e = open_image(img, n);
		if (n < SH_OFF + NSECS * sizeof(Elf64_Shdr))
			ck_assert_msg(e == NULL, "%zu bytes of the image accepted", n);
		if (e != NULL)
			exercise(e, 0xff0, 0x2010);
		close_image(e);
	}
	remove_tmpdir();
}
END_TEST

/* Random corruption of the headers, tables and strings: whatever opens
 * must answer without reading outside the file (ASan) or crashing. */
START_TEST(image_fuzzed)
{
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned iters = 4000, i, k, flips, opened = 0;
	static unsigned char copy[IMG_SIZE];
	struct ss_elf *e;

	make_tmpdir();
	build_image();
	memcpy(copy, img, sizeof(img));
	for (i = 0; i < iters; i++) {
		memcpy(img, copy, sizeof(img));
		flips = 1 + (unsigned)(rnd(&seed) % 8);
		for (k = 0; k < flips; k++) {
			/* Bytes that mean something: the ELF header, the
			 * strings, the symbols, the section headers. */
			size_t at = (size_t)(rnd(&seed) % (SH_OFF + NSECS * sizeof(Elf64_Shdr)));

			if (rnd(&seed) & 1)
				img[at] ^= (unsigned char)(1u << (rnd(&seed) % 8));
			else
				img[at] = (unsigned char)rnd(&seed);
		}
		e = open_image(img, sizeof(img));
		if (e != NULL) {
			opened++;
			exercise(e, 0xff0, 0x2010);
		}
		close_image(e);
	}
	/* Most single flips land in bytes that do not matter: the fuzzing
	 * must have reached the queries, not only the refusals. */
	ck_assert_uint_gt(opened, iters / 10);
	remove_tmpdir();
}
END_TEST

/* ----------------------------------------------------- other bad files */

START_TEST(bad_files_refused)
{
	static unsigned char junk[4096];
	uint64_t seed = 42;
	char path[PATH_MAX + 16];
	Elf64_Ehdr eh;
	size_t i;

	make_tmpdir();
	ck_assert_ptr_null(ss__elf_open(put_file("empty", "", 0)));

	/* A genuine header, cut short. */
	build_image();
	memcpy(&eh, img, sizeof(eh));
	ck_assert_ptr_null(ss__elf_open(put_file("short", &eh, 32)));
	ck_assert_ptr_null(ss__elf_open(put_file("short1", &eh, sizeof(eh) - 1)));
	ck_assert_ptr_null(ss__elf_open(put_file("magic", ELFMAG, SELFMAG)));

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rnd(&seed);
	ck_assert_ptr_null(ss__elf_open(put_file("random", junk, sizeof(junk))));
	/* Random bytes behind a valid ident: whatever is found there, no
	 * crash (most likely refused). */
	memcpy(junk, eh.e_ident, EI_NIDENT);
	ss__elf_close(ss__elf_open(put_file("random-elf", junk, sizeof(junk))));

	ck_assert_ptr_null(ss__elf_open(tmpdir));
	errno = 0;
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	ck_assert_ptr_null(ss__elf_open(path));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_null(ss__elf_open(""));
	/* A FIFO without a writer: refused at once, not waited on. */
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_ptr_null(ss__elf_open(path));
	ck_assert_ptr_null(ss__elf_open("/dev/null"));
	/* A real 32-bit library, where one is installed. */
	if (access("/lib32/libc.so.6", R_OK) == 0)
		ck_assert_ptr_null(ss__elf_open("/lib32/libc.so.6"));
	remove_tmpdir();
}
END_TEST

/* -------------------------------------------------------- real files */

/* The object that contains an address, from dl_iterate_phdr. */
struct find_obj {
	uintptr_t addr;      /* in: an address, or 0 */
	const char *substr;  /* in: or a substring of the object's path */
	uintptr_t bias;      /* out: dlpi_addr */
	char path[PATH_MAX]; /* out: its path ("" for the main program) */
	int found;
};

static int find_obj_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct find_obj *f = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	int i;

	if (f->substr != NULL) {
		if (strstr(name, f->substr) == NULL)
			return 0;
		f->found = 1;
	}
	for (i = 0; !f->found && i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && f->addr >= start &&
		    f->addr - start < ph->p_memsz)
			f->found = 1;
	}
	if (!f->found)
		return 0;
	f->bias = info->dlpi_addr;
	snprintf(f->path, sizeof(f->path), "%s", name);
	return 1;
}

int main(void);

/* Something to find: not inlined, its address taken, so it keeps its
 * name and a body of its own. */
static __attribute__((noinline)) int elfsym_probe_static(int x)
{
	return x * 3 + 1;
}

static int (*volatile probe_ptr)(int) = elfsym_probe_static;

START_TEST(self_symbolize)
{
	uintptr_t addr = (uintptr_t)probe_ptr, off = 99;
	struct find_obj f = { .addr = addr };
	struct ss_elf *e;
	char name[128];

	ck_assert_int_eq(probe_ptr(1), 4);
	dl_iterate_phdr(find_obj_cb, &f);
	ck_assert_msg(f.found, "no loaded object contains %#lx", (unsigned long)addr);
	ck_assert_msg(f.path[0] == '\0', "%#lx is in %s, not the main program",
	              (unsigned long)addr, f.path);
	e = ss__elf_open("/proc/self/exe");
	ck_assert_msg(e != NULL, "/proc/self/exe: %s", strerror(errno));
	ck_assert_int_eq(ss__elf_symbolize(e, addr - f.bias, name, sizeof(name), &off), 0);
	ck_assert_str_eq(name, "elfsym_probe_static");
	ck_assert_uint_eq(off, 0);
	ck_assert_int_eq(ss__elf_symbolize(e, addr + 1 - f.bias, name, sizeof(name), &off), 0);
	ck_assert_str_eq(name, "elfsym_probe_static");
	ck_assert_uint_eq(off, 1);
	/* main is global, in .symtab and maybe not in .dynsym. */
	addr = (uintptr_t)main;
	ck_assert_int_eq(ss__elf_symbolize(e, addr - f.bias, name, sizeof(name), &off), 0);
	ck_assert_str_eq(name, "main");
	ck_assert_uint_eq(off, 0);
	ss__elf_close(e);
}
END_TEST

START_TEST(self_defines)
{
	struct ss_elf *e = ss__elf_open("/proc/self/exe");

	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(ss__elf_defines(e, "elfsym_probe_static"), 1);
	ck_assert_int_eq(ss__elf_defines(e, "main"), 1);
	/* Linked from the core library into this program. */
	ck_assert_int_eq(ss__elf_defines(e, "ss__elf_defines"), 1);
	/* Only called: an undefined symbol here, defined in libc. */
	ck_assert_int_eq(ss__elf_defines(e, "mkdtemp"), 0);
	ck_assert_int_eq(ss__elf_defines(e, "no_such_symbol"), 0);
	/* A variable is not a function. */
	ck_assert_int_eq(ss__elf_defines(e, "probe_ptr"), 0);
	ss__elf_close(e);
}
END_TEST

/* libc's object, and a handle on it that dlsym searches. */
static void *find_libc(struct find_obj *f)
{
	void *h;

	f->substr = "/libc.so";
	dl_iterate_phdr(find_obj_cb, f);
	if (!f->found)
		return NULL;
	h = dlopen(f->path, RTLD_LAZY | RTLD_NOLOAD);
	ck_assert_msg(h != NULL, "dlopen %s: %s", f->path, dlerror());
	return h;
}

/* addr, a function of libc found by dlsym, is named name (or an alias
 * that dlsym also maps to it), at offset off. */
static void check_libc_fn(struct ss_elf *e, const struct find_obj *f, void *h,
                          const char *fn, const char *want)
{
	uintptr_t addr = (uintptr_t)dlsym(h, fn), off = 99;
	struct find_obj in = { .addr = addr };
	char name[128];

	ck_assert_msg(addr != 0, "dlsym %s: %s", fn, dlerror());
	dl_iterate_phdr(find_obj_cb, &in);
	ck_assert_msg(in.found && in.bias == f->bias,
	              "dlsym(%s) is outside %s", fn, f->path);
	ck_assert_int_eq(ss__elf_symbolize(e, addr - f->bias, name, sizeof(name), &off), 0);
	ck_assert_uint_eq(off, 0);
	if (want != NULL)
		ck_assert_str_eq(name, want);
	else
		ck_assert_msg((uintptr_t)dlsym(h, name) == addr,
		              "%s is named %s, which is elsewhere", fn, name);
	ck_assert_int_eq(ss__elf_symbolize(e, addr + 1 - f->bias, name, sizeof(name), &off), 0);
	ck_assert_uint_eq(off, 1);
}

START_TEST(libc_symbolize)
{
	struct find_obj f = { 0 };
	struct ss_elf *e;
	void *h;

	h = find_libc(&f);
	if (h == NULL)
		return; /* not glibc: no libc.so to read */
	e = ss__elf_open(f.path);
	ck_assert_msg(e != NULL, "%s: %s", f.path, strerror(errno));
	/* malloc and __libc_malloc are one function in glibc: the name
	 * without underscores wins. */
	check_libc_fn(e, &f, h, "malloc", "malloc");
	check_libc_fn(e, &f, h, "qsort", NULL);
	check_libc_fn(e, &f, h, "strtol", NULL);
	check_libc_fn(e, &f, h, "fopen", NULL);
	ss__elf_close(e);
	dlclose(h);
}
END_TEST

START_TEST(libc_defines)
{
	struct find_obj f = { 0 };
	struct ss_elf *e;
	void *h;

	h = find_libc(&f);
	if (h == NULL)
		return;
	e = ss__elf_open(f.path);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(ss__elf_defines(e, "malloc"), 1);
	ck_assert_int_eq(ss__elf_defines(e, "free"), 1);
	ck_assert_int_eq(ss__elf_defines(e, "no_such_symbol"), 0);
	ck_assert_int_eq(ss__elf_defines(e, "main"), 0);
	/* A variable, not a function. */
	ck_assert_int_eq(ss__elf_defines(e, "environ"), 0);
	ss__elf_close(e);
	dlclose(h);
}
END_TEST

/* Many lookups in a real table: every answer names a function that
 * contains the address. */
START_TEST(self_many_lookups)
{
	struct find_obj f = { .addr = (uintptr_t)main };
	struct ss_elf *e;
	char name[128];
	uintptr_t base, off, a;
	int hits = 0;

	dl_iterate_phdr(find_obj_cb, &f);
	ck_assert(f.found);
	e = ss__elf_open("/proc/self/exe");
	ck_assert_ptr_nonnull(e);
	base = (uintptr_t)main - f.bias;
	for (a = base > 0x10000 ? base - 0x10000 : 0; a < base + 0x10000; a += 3) {
		if (ss__elf_symbolize(e, a, name, sizeof(name), &off) != 0)
			continue;
		hits++;
		ck_assert_uint_le(off, a);
		ck_assert_int_ne(name[0], '\0');
	}
	ck_assert_int_gt(hits, 0);
	ss__elf_close(e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("elfsym");
	TCase *img_tc = tcase_new("image");
	TCase *bad_tc = tcase_new("bad files");
	TCase *real_tc = tcase_new("real files");

	tcase_add_checked_fixture(img_tc, NULL, remove_tmpdir);
	tcase_add_test(img_tc, image_symbolize);
	tcase_add_test(img_tc, image_defines);
	tcase_add_test(img_tc, image_dynsym_only);
	tcase_add_test(img_tc, image_without_symbols);
	tcase_add_loop_test(img_tc, image_malformed_refused, 0,
	                    (int)(sizeof(breakages) / sizeof(breakages[0])));
	tcase_add_test(img_tc, image_truncated);
	tcase_add_test(img_tc, image_fuzzed);
	suite_add_tcase(s, img_tc);

	tcase_add_checked_fixture(bad_tc, NULL, remove_tmpdir);
	tcase_add_test(bad_tc, bad_files_refused);
	suite_add_tcase(s, bad_tc);

	tcase_add_test(real_tc, self_symbolize);
	tcase_add_test(real_tc, self_defines);
	tcase_add_test(real_tc, self_many_lookups);
	tcase_add_test(real_tc, libc_symbolize);
	tcase_add_test(real_tc, libc_defines);
	suite_add_tcase(s, real_tc);
	return run_suite(s);
}
