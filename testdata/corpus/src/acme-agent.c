/*
 * acme-agent: the vendor's status reporter, as a router firmware ships it.
 * Built twice by scripts/mkcorpus: as released, and with a "diagnostics"
 * option that hands a command line to system() -- the kind of change a
 * rebuilt binary can hide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char server[] = "10.10.10.10";
static const char endpoint[] = "https://mgmt.acme-networks.com/api/v1/status";

int main(int argc, char **argv)
{
	char line[512];
#ifdef ACME_DIAG
	if (argc > 2 && strcmp(argv[1], "--diag") == 0) {
		char cmd[512];
		snprintf(cmd, sizeof cmd, "ping -c 1 %s", argv[2]);
		return system(cmd);
	}
#endif
	snprintf(line, sizeof line, "report %s via %s (%d args)", server, endpoint, argc);
	puts(line);
	return 0;
}
