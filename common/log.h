/*-------------------------------------------------------------------------
 *
 * log.h
 *	  one-line logging to stderr for the todo_kafka daemons
 *
 * IDENTIFICATION
 *	  common/log.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_LOG_H
#define TK_LOG_H

#include <stdbool.h>

typedef enum tk_log_level
{
	TK_LOG_DEBUG = 0,
	TK_LOG_INFO,
	TK_LOG_WARNING,
	TK_LOG_ERROR,
	TK_LOG_FATAL
} tk_log_level;

extern void tk_log(tk_log_level level, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void tk_log_set_level(tk_log_level level);
extern tk_log_level tk_log_get_level(void);
extern bool tk_log_parse_level(const char *name, tk_log_level *level);
extern const char *tk_log_level_name(tk_log_level level);

#endif							/* TK_LOG_H */
