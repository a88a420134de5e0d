/*-------------------------------------------------------------------------
 *
 * config.c
 *	  "key = value" configuration files and secret redaction
 *
 * File format (kcat's -F file, pgbouncer's ini without sections):
 *	 - one "key = value" per line; blanks around key and value are dropped;
 *	 - "#" starts a comment when it begins a line or follows a blank, so a
 *	   value may contain "#" (e.g. inside a password) when written without
 *	   a blank before it;
 *	 - a value may be double-quoted to keep leading/trailing blanks or a
 *	   " #"; inside quotes \" and \\ are escapes;
 *	 - empty lines are ignored.
 * The parser knows no keys: each pair goes to the caller's setter, which
 * validates it.  The first error stops parsing and is reported as
 * "path:line: message" in errbuf; nothing is applied by this module, so a
 * caller that parses into a scratch copy keeps its old configuration on
 * error (reload semantics).
 *
 * Secrets: tk_config_is_secret() says whether a property name holds a
 * secret (any name containing "password", "secret", "sasl.oauthbearer.config"
 * or starting with "ssl.key"); such values are shown as "[redacted]"
 * everywhere (logs, --help, error messages).
 *
 * IDENTIFICATION
 *	  common/config.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define TK_CONFIG_MAX_LINE 8192

static char *
trim(char *s)
{
	char	   *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

/*
 * Parse one line in place.  Returns NULL on success with key and value set
 * (*key NULL for blank and comment lines), else an error message.
 */
static const char *
parse_line(char *line, char **key, char **value)
{
	char	   *eq;
	char	   *v;
	char	   *p;

	*key = NULL;
	*value = NULL;
	line = trim(line);
	if (*line == '\0' || *line == '#')
		return NULL;

	eq = strchr(line, '=');
	if (eq == NULL)
		return "syntax error: expected \"key = value\"";
	*eq = '\0';
	*key = trim(line);
	if (**key == '\0')
		return "syntax error: missing key before \"=\"";
	for (p = *key; *p; p++)
	{
		if (!(isalnum((unsigned char) *p) || *p == '.' || *p == '_' || *p == '-'))
			return "syntax error: invalid character in key";
	}

	v = eq + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '"')
	{
		char	   *out = v;

		p = v + 1;
		while (*p && *p != '"')
		{
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			*out++ = *p++;
		}
		if (*p != '"')
			return "syntax error: unterminated quoted value";
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '\0' && *p != '#')
			return "syntax error: text after quoted value";
		*out = '\0';
		*value = v;
		return NULL;
	}

	/* strip a trailing comment: "#" preceded by a blank */
	for (p = v; *p; p++)
	{
		if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t'))
		{
			*p = '\0';
			break;
		}
	}
	*value = trim(v);
	return NULL;
}

bool
tk_config_parse_text(const char *text, const char *path,
					 tk_config_setter setter, void *arg,
					 char *errbuf, size_t errlen)
{
	const char *p = text;
	int			lineno = 0;
	char		line[TK_CONFIG_MAX_LINE];

	while (*p)
	{
		const char *nl = strchr(p, '\n');
		size_t		n = nl ? (size_t) (nl - p) : strlen(p);
		char	   *key;
		char	   *value;
		const char *err;
		char		setter_err[512];

		lineno++;
		if (n >= sizeof(line))
		{
			snprintf(errbuf, errlen, "%s:%d: line too long", path, lineno);
			return false;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);

		err = parse_line(line, &key, &value);
		if (err == NULL && key != NULL)
		{
			setter_err[0] = '\0';
			err = setter(arg, key, value, setter_err, sizeof(setter_err));
		}
		if (err != NULL)
		{
			snprintf(errbuf, errlen, "%s:%d: %s", path, lineno, err);
			return false;
		}
	}
	return true;
}

bool
tk_config_parse_file(const char *path, tk_config_setter setter, void *arg,
					 char *errbuf, size_t errlen)
{
	FILE	   *f;
	char	   *text = NULL;
	size_t		len = 0;
	size_t		cap = 0;
	size_t		n;
	char		chunk[4096];
	bool		ok;

	f = fopen(path, "r");
	if (f == NULL)
	{
		snprintf(errbuf, errlen, "could not open config file \"%s\": %s",
				 path, strerror(errno));
		return false;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
	{
		if (len + n + 1 > cap)
		{
			char	   *t;

			cap = (len + n + 1) * 2;
			t = realloc(text, cap);
			if (t == NULL)
			{
				free(text);
				fclose(f);
				snprintf(errbuf, errlen, "%s: out of memory", path);
				return false;
			}
			text = t;
		}
		memcpy(text + len, chunk, n);
		len += n;
	}
	if (ferror(f))
	{
		snprintf(errbuf, errlen, "could not read config file \"%s\": %s",
				 path, strerror(errno));
		fclose(f);
		free(text);
		return false;
	}
	fclose(f);
	if (text == NULL)
		return true;			/* empty file */
	text[len] = '\0';
	if (strlen(text) != len)
	{
		snprintf(errbuf, errlen, "%s: file contains a NUL byte", path);
		free(text);
		return false;
	}
	ok = tk_config_parse_text(text, path, setter, arg, errbuf, errlen);
	free(text);
	return ok;
}

/* split "key=value" (a -X argument); key copied, value points into arg */
bool
tk_config_split_kv(const char *arg, char *key, size_t keylen, const char **value)
{
	const char *eq = strchr(arg, '=');
	size_t		n;

	if (eq == NULL || eq == arg)
		return false;
	n = (size_t) (eq - arg);
	if (n >= keylen)
		return false;
	memcpy(key, arg, n);
	key[n] = '\0';
	*value = eq + 1;
	return true;
}

bool
tk_config_is_secret(const char *name)
{
	return strcasestr(name, "password") != NULL ||
		strcasestr(name, "secret") != NULL ||
		strcasestr(name, "sasl.oauthbearer.config") != NULL ||
		strcasestr(name, "ssl.key") != NULL;
}

const char *
tk_config_display_value(const char *name, const char *value)
{
	return tk_config_is_secret(name) ? "[redacted]" : value;
}

bool
tk_config_parse_int(const char *s, long min, long max, long *out)
{
	char	   *end;
	long		v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool
tk_config_parse_bool(const char *s, bool *out)
{
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0 ||
		strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0)
		*out = true;
	else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0 ||
			 strcasecmp(s, "no") == 0 || strcmp(s, "0") == 0)
		*out = false;
	else
		return false;
	return true;
}
