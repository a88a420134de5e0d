/*-------------------------------------------------------------------------
 *
 * clock.h
 *	  monotonic and wall-clock time in the units the daemons use
 *
 * IDENTIFICATION
 *	  common/clock.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_CLOCK_H
#define TK_CLOCK_H

#include <stdint.h>

extern int64_t tk_monotonic_ms(void);
extern int64_t tk_wall_us(void);
extern int64_t tk_parse_rfc3339_us(const char *s);

#endif							/* TK_CLOCK_H */
