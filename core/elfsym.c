/*
 * elfsym.c - function symbols of an ELF file, read from disk (see
 * elfsym.h for the uses and the contract).
 *
 * The whole file is mapped read-only and every header, section and string
 * we will touch is checked against the file's size once, at open; the
 * queries then read the mapping without further checks.  The rules:
 *
 *  - The ELF header must fit, say ELFCLASS64, the host's byte order (we do
 *    not swap), EV_CURRENT, ET_EXEC or ET_DYN.  A relocatable object's
 *    symbol values are section offsets and a core file has no symbols, so
 *    neither would answer the questions asked here.
 *  - The section header table must fit, with entries of the size we read.
 *    e_shoff == 0 means "no section headers" (a file run through sstrip):
 *    valid, and nothing to find.  Extended numbering (e_shnum == 0 with a
 *    table, e_shstrndx == SHN_XINDEX: over 65279 sections) is refused; no
 *    object we symbolize has that many.
 *  - Every section that occupies file space must lie inside the file, even
 *    ones we never read: a section table that lies about one section is a
 *    damaged or half-written file, and its symbol tables are not to be
 *    trusted either.  SHT_NOBITS sections (.bss, and most sections of a
 *    separate debug file) occupy none, so their offset and size mean
 *    nothing and are not checked.
 *  - A symbol table (SHT_SYMTAB, SHT_DYNSYM; the first of each) must have
 *    entries of sizeof(Elf64_Sym), a whole number of them, and link to an
 *    SHT_STRTAB section whose last byte is NUL; every symbol's name offset
 *    must fall inside that string table.  Then every name is a C string
 *    that ends inside the file, and strcmp on it is safe.
 *
 * Offsets are checked as "off <= size && len <= size - off", never
 * "off + len <= size", which a huge offset would wrap past.
 *
 * Alignment: a malformed file may put a table at any offset, so headers
 * and symbols are copied out with memcpy rather than read through a
 * pointer to the struct (which would be undefined behaviour, and a fault
 * under -fsanitize=alignment).  The compiler turns the copies into plain
 * loads.
 *
 * Symbolization: at open, the function symbols of one table (.symtab if it
 * has any, else .dynsym: a stripped file keeps only the latter) are copied
 * into an array sorted by address, with aliases folded, so that a lookup
 * is a binary search.  Symbols may nest (a sized local label inside a
 * function), so the entry found, the last one that starts at or below the
 * address, need not contain it: each entry also carries the highest end of
 * all sized entries up to it ("reach"), and the lookup walks back from the
 * entry found while some earlier entry can still contain the address.
 * Without nesting, that walk stops at once.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SS_ELF_DATA ELFDATA2LSB
#else
#define SS_ELF_DATA ELFDATA2MSB
#endif

/* One validated symbol table: entries (possibly unaligned) and strings. */
struct elf_tab {
	const unsigned char *syms;
	size_t nsyms;
	const char *str;      /* str[strsz - 1] == '\0' */
	size_t strsz;
};

/* One function of the sorted table. */
struct elf_fn {
	uint64_t value;
	/* value + size; for a zero-sized symbol, the end of its section,
	 * which bounds how far its guess may reach. */
	uint64_t end;
	/* Highest end of the sized entries at or below this one. */
	uint64_t reach;
	uint32_t name;        /* offset in fntab->str */
	/* Only to sort: aliases rank by binding, then leading underscores,
	 * then symbol index, so the order (and so the name chosen) does not
	 * depend on qsort, and the comparison needs no string table. */
	uint32_t rank;
	uint8_t sized;
};

struct ss_elf {
	const unsigned char *map;   /* NULL when there is nothing to read */
	size_t size;
	const unsigned char *shdrs; /* section header table, shnum entries */
	size_t shnum;
	struct elf_tab symtab;      /* nsyms == 0: absent */
	struct elf_tab dynsym;
	const struct elf_tab *fntab; /* the table fns[] names point into */
	struct elf_fn *fns;
	size_t nfns;
};

/* [off, off + len) lies inside a file of size bytes; no overflow. */
static bool elf_fits(size_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

static void elf_shdr(const struct ss_elf *e, size_t i, Elf64_Shdr *sh)
{
	memcpy(sh, e->shdrs + i * sizeof(*sh), sizeof(*sh));
}

static void elf_sym(const struct elf_tab *t, size_t i, Elf64_Sym *s)
{
	memcpy(s, t->syms + i * sizeof(*s), sizeof(*s));
}

/*
 * Check the symbol table in section sh and its string table; fill t.
 * Returns 0, or -1 when either is malformed (the caller refuses the file).
 */
static int elf_load_tab(const struct ss_elf *e, const Elf64_Shdr *sh,
                        struct elf_tab *t)
{
	Elf64_Shdr str;
	Elf64_Sym s;
	size_t i, n;

	if (sh->sh_entsize != sizeof(Elf64_Sym) ||
	    sh->sh_size % sizeof(Elf64_Sym) != 0 ||
	    !elf_fits(e->size, sh->sh_offset, sh->sh_size))
		return -1;
	if (sh->sh_link == SHN_UNDEF || sh->sh_link >= e->shnum)
		return -1;
	/* The string table may come later in the section table than the
	 * loop of elf_parse has reached: check its bounds here. */
	elf_shdr(e, sh->sh_link, &str);
	if (str.sh_type != SHT_STRTAB || str.sh_size == 0 ||
	    !elf_fits(e->size, str.sh_offset, str.sh_size))
		return -1;
	t->str = (const char *)e->map + str.sh_offset;
	t->strsz = str.sh_size;
	/* A terminated table makes every in-range offset a C string. */
	if (t->str[t->strsz - 1] != '\0')
		return -1;
	t->syms = e->map + sh->sh_offset;
	n = sh->sh_size / sizeof(Elf64_Sym);
	for (i = 0; i < n; i++) {
		elf_sym(t, i, &s);
		if (s.st_name >= t->strsz)
			return -1;
	}
	t->nsyms = n;
	return 0;
}

/*
 * Entry i of t as a function of the sorted table, or false.  Symbol 0 is
 * the reserved null symbol of every table.
 */
static bool elf_fn_of(const struct ss_elf *e, const struct elf_tab *t,
                      size_t i, struct elf_fn *fn)
{
	unsigned type, bind, us = 0;
	const char *name;
	Elf64_Shdr sec;
	Elf64_Sym s;

	if (i == 0)
		return false;
	elf_sym(t, i, &s);
	type = ELF64_ST_TYPE(s.st_info);
	bind = ELF64_ST_BIND(s.st_info);
	name = t->str + s.st_name;
	if (s.st_shndx == SHN_UNDEF || name[0] == '\0')
		return false;
	if (type != STT_FUNC && type != STT_GNU_IFUNC &&
	    !(type == STT_NOTYPE && s.st_size != 0))
		return false;
	fn->value = s.st_value;
	fn->name = s.st_name;
	if (s.st_size != 0) {
		/* A size that wraps the address space is nonsense, not a
		 * danger (no memory is read at symbol values): skip it. */
		if (s.st_value + s.st_size < s.st_value)
			return false;
		fn->end = s.st_value + s.st_size;
		fn->sized = 1;
	} else {
		/* A zero-sized function may only guess inside its own
		 * section: never past the end of .text into the next one. */
		if (s.st_shndx >= e->shnum)
			return false; /* SHN_ABS, SHN_COMMON, SHN_XINDEX */
		elf_shdr(e, s.st_shndx, &sec);
		if (sec.sh_addr + sec.sh_size < sec.sh_addr ||
		    s.st_value < sec.sh_addr ||
		    s.st_value >= sec.sh_addr + sec.sh_size)
			return false;
		fn->end = sec.sh_addr + sec.sh_size;
		fn->sized = 0;
	}
	while (us < 3 && name[us] == '_')
		us++;
	/* rank: binding (global, weak/unique, local) in bits 30-31,
	 * underscores in 28-29, symbol index below (tables over 2^28
	 * symbols only lose the tie-break, not correctness). */
	fn->rank = (bind == STB_GLOBAL ? 0u : bind == STB_LOCAL ? 2u : 1u) << 30 |
	           (uint32_t)us << 28 | (uint32_t)(i & 0x0fffffff);
	return true;
}

/* Address ascending; at one address the outermost first (walking back
 * from the last entry at or below an address meets the innermost first),
 * sized before zero-sized, then the preferred alias. */
static int elf_fn_cmp(const void *pa, const void *pb)
{
	const struct elf_fn *a = pa, *b = pb;

	if (a->value != b->value)
		return a->value < b->value ? -1 : 1;
	if (a->sized != b->sized)
		return a->sized ? -1 : 1;
	if (a->end != b->end)
		return a->end > b->end ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return 0;
}

/*
 * Fill e->fns from table t: count, copy, sort, fold aliases (same value,
 * same end, same kind: keep the first, the preferred one), compute reach.
 * Returns 0 (possibly with no functions), or -1 out of memory.
 */
static int elf_collect(struct ss_elf *e, const struct elf_tab *t)
{
	struct elf_fn fn, *fns, *shrunk;
	size_t i, n = 0, k;
	uint64_t reach = 0;

	for (i = 0; i < t->nsyms; i++)
		n += elf_fn_of(e, t, i, &fn);
	if (n == 0)
		return 0;
	fns = malloc(n * sizeof(*fns));
	if (fns == NULL)
		return -1;
	for (i = 0, k = 0; i < t->nsyms && k < n; i++)
		if (elf_fn_of(e, t, i, &fns[k]))
			k++;
	qsort(fns, n, sizeof(*fns), elf_fn_cmp);
	for (i = 0, k = 0; i < n; i++) {
		if (k > 0 && fns[k - 1].value == fns[i].value &&
		    fns[k - 1].end == fns[i].end &&
		    fns[k - 1].sized == fns[i].sized)
			continue;
		fns[k] = fns[i];
		if (fns[k].sized && fns[k].end > reach)
			reach = fns[k].end;
		fns[k].reach = reach;
		k++;
	}
	/* Give back what aliases freed; if even shrinking fails, the
	 * larger block serves as well. */
	shrunk = realloc(fns, k * sizeof(*fns));
	e->fns = shrunk != NULL ? shrunk : fns;
	e->nfns = k;
	e->fntab = t;
	return 0;
}

/* Validate the mapped file and find its tables; 0, or -1 (malformed). */
static int elf_parse(struct ss_elf *e)
{
	Elf64_Ehdr eh;
	Elf64_Shdr sh;
	size_t i;

	if (e->size < sizeof(eh))
		return -1;
	memcpy(&eh, e->map, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != SS_ELF_DATA ||
	    eh.e_ident[EI_VERSION] != EV_CURRENT)
		return -1;
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return -1;
	if (eh.e_shoff == 0)
		return eh.e_shnum == 0 ? 0 : -1; /* no section headers */
	if (eh.e_shnum == 0 || eh.e_shstrndx == SHN_XINDEX)
		return -1; /* extended numbering */
	if (eh.e_shentsize != sizeof(Elf64_Shdr) ||
	    !elf_fits(e->size, eh.e_shoff,
	              (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr)))
		return -1;
	e->shdrs = e->map + eh.e_shoff;
	e->shnum = eh.e_shnum;
	for (i = 0; i < e->shnum; i++) {
		elf_shdr(e, i, &sh);
		if (sh.sh_type == SHT_NULL || sh.sh_type == SHT_NOBITS)
			continue;
		if (!elf_fits(e->size, sh.sh_offset, sh.sh_size))
			return -1;
		if (sh.sh_type == SHT_SYMTAB && e->symtab.nsyms == 0 &&
		    elf_load_tab(e, &sh, &e->symtab) != 0)
			return -1;
		if (sh.sh_type == SHT_DYNSYM && e->dynsym.nsyms == 0 &&
		    elf_load_tab(e, &sh, &e->dynsym) != 0)
			return -1;
	}
	return 0;
}

struct ss_elf *ss__elf_open(const char *path)
{
	struct ss_elf *e;
	struct stat st;
	void *map;
	int fd, err;

	/* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	 * writer; it changes nothing for a regular file. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	/* A directory, a device, a FIFO: not a file to map.  Too short for
	 * an ELF header (mmap of 0 bytes would fail anyway). */
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr) ||
	    (uint64_t)st.st_size > SIZE_MAX) {
		close(fd);
		errno = ENOEXEC;
		return NULL;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	err = errno;
	close(fd); /* the mapping keeps the file */
	if (map == MAP_FAILED) {
		errno = err;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		munmap(map, (size_t)st.st_size);
		errno = ENOMEM;
		return NULL;
	}
	e->map = map;
	e->size = (size_t)st.st_size;
	if (elf_parse(e) != 0) {
		ss__elf_close(e);
		errno = ENOEXEC;
		return NULL;
	}
	if (elf_collect(e, &e->symtab) != 0 ||
	    (e->nfns == 0 && elf_collect(e, &e->dynsym) != 0)) {
		ss__elf_close(e);
		errno = ENOMEM;
		return NULL;
	}
	/* Nothing to read later: give the address space back now. */
	if (e->symtab.nsyms == 0 && e->dynsym.nsyms == 0) {
		munmap((void *)e->map, e->size);
		e->map = NULL;
		e->shdrs = NULL;
		e->shnum = 0;
	}
	return e;
}

void ss__elf_close(struct ss_elf *e)
{
	if (e == NULL)
		return;
	if (e->map != NULL)
		munmap((void *)e->map, e->size);
	free(e->fns);
	free(e);
}

int ss__elf_symbolize(const struct ss_elf *e, uintptr_t vaddr, char *name,
                      size_t len, uintptr_t *off)
{
	const struct elf_fn *fns = e->fns, *hit = NULL;
	size_t lo = 0, hi = e->nfns, i, j, n;
	const char *s;

	/* lo = the number of entries that start at or below vaddr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (fns[mid].value <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	i = lo - 1;
	/* The innermost sized symbol that contains vaddr: every entry at or
	 * below j starts at or below vaddr, so it contains vaddr iff it
	 * ends above it; once reach is at or below vaddr none can. */
	for (j = i + 1; j-- > 0 && fns[j].reach > vaddr;) {
		if (fns[j].sized && fns[j].end > vaddr) {
			hit = &fns[j];
			break;
		}
	}
	/* Else a zero-sized function, if it is the last symbol that starts
	 * at or below vaddr: a sized one there that does not reach vaddr
	 * means vaddr is in the padding after it. */
	if (hit == NULL) {
		for (j = i + 1; j-- > 0 && fns[j].value == fns[i].value;) {
			if (fns[j].sized)
				return -1;
			if (fns[j].end > vaddr)
				hit = &fns[j];
		}
	}
	if (hit == NULL)
		return -1;
	if (len > 0) {
		s = e->fntab->str + hit->name;
		n = strnlen(s, len - 1);
		memcpy(name, s, n);
		name[n] = '\0';
	}
	if (off != NULL)
		*off = vaddr - hit->value;
	return 0;
}

/* t defines a function named name, or name@VERSION when n is
 * strlen(name) (n is SIZE_MAX for a name that has its own version, to be
 * matched whole). */
static bool elf_tab_defines(const struct elf_tab *t, const char *name,
                            size_t n)
{
	const char *s;
	Elf64_Sym sym;
	unsigned type;
	size_t i;

	for (i = 1; i < t->nsyms; i++) {
		elf_sym(t, i, &sym);
		type = ELF64_ST_TYPE(sym.st_info);
		if (sym.st_shndx == SHN_UNDEF ||
		    (type != STT_FUNC && type != STT_GNU_IFUNC))
			continue;
		s = t->str + sym.st_name;
		if (n == SIZE_MAX ? strcmp(s, name) == 0 :
		    strncmp(s, name, n) == 0 && (s[n] == '\0' || s[n] == '@'))
			return true;
	}
	return false;
}

int ss__elf_defines(const struct ss_elf *e, const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '\0')
		return 0;
	n = strchr(name, '@') != NULL ? SIZE_MAX : strlen(name);
	return elf_tab_defines(&e->symtab, name, n) ||
	       elf_tab_defines(&e->dynsym, name, n);
}
