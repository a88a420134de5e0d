/*-------------------------------------------------------------------------
 *
 * config.h
 *	  "key = value" configuration files and secret redaction
 *
 * IDENTIFICATION
 *	  common/config.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_CONFIG_H
#define TK_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Called once per "key = value" line.  Return NULL to accept, or a message
 * (static or written into errbuf) that is reported as "path:line: message".
 */
typedef const char *(*tk_config_setter) (void *arg, const char *key,
										 const char *value,
										 char *errbuf, size_t errlen);

extern bool tk_config_parse_file(const char *path, tk_config_setter setter,
								 void *arg, char *errbuf, size_t errlen);
extern bool tk_config_parse_text(const char *text, const char *path,
								 tk_config_setter setter, void *arg,
								 char *errbuf, size_t errlen);
extern bool tk_config_split_kv(const char *arg, char *key, size_t keylen,
							   const char **value);
extern bool tk_config_is_secret(const char *name);
extern const char *tk_config_display_value(const char *name, const char *value);
extern bool tk_config_parse_int(const char *s, long min, long max, long *out);
extern bool tk_config_parse_bool(const char *s, bool *out);

#endif							/* TK_CONFIG_H */
