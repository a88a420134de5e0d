/*-------------------------------------------------------------------------
 *
 * test_json.h
 *	  reading built messages in the unit tests (cJSON)
 *
 * IDENTIFICATION
 *	  common/test_json.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_TEST_JSON_H
#define TK_TEST_JSON_H

#include <cjson/cJSON.h>

/* the string o.a (or o.a.b), NULL when it is not a string */
static const char *
jstr(cJSON *o, const char *a, const char *b)
{
	cJSON	   *x = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b)
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	return cJSON_IsString(x) ? x->valuestring : NULL;
}

#endif							/* TK_TEST_JSON_H */
