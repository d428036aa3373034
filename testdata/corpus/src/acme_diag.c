/*
 * A kernel module as the build leaves it: a relocatable ELF object with a
 * .modinfo section of key=value strings, which is what modinfo(8) and fwvet
 * read. Built by scripts/mkcorpus with gcc -c; never loaded.
 */
#define MODINFO(tag, line) \
	static const char __modinfo_##tag[] \
	__attribute__((section(".modinfo"), used, aligned(1))) = line

MODINFO(name, "name=acme_diag");
MODINFO(license, "license=GPL");
MODINFO(author, "author=Acme Networks");
MODINFO(description, "description=Acme field diagnostics");
MODINFO(vermagic, "vermagic=5.10.0 SMP mod_unload");
MODINFO(depends, "depends=");

int init_module(void)
{
	return 0;
}

void cleanup_module(void)
{
}
