/*-------------------------------------------------------------------------
 *
 * test_tap.h
 *	  the TAP output of the unit test programs (common/, relay/,
 *	  consumers/runtime/: test_*.c; tests/100_unit.pl runs them)
 *
 * One program per concern, each including this once: ok() prints
 * "ok N - name" or "not ok N - name"; main() ends with
 * printf("1..%d\n", ntests) and returns nfailed != 0.
 *
 * IDENTIFICATION
 *	  common/test_tap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_TEST_TAP_H
#define TK_TEST_TAP_H

#include <stdio.h>

static int	ntests = 0;
static int	nfailed = 0;

static void
ok(int cond, const char *name)
{
	ntests++;
	if (!cond)
		nfailed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", ntests, name);
}

#endif							/* TK_TEST_TAP_H */
