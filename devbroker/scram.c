/*-------------------------------------------------------------------------
 *
 * scram.c
 *	  the server side of SCRAM-SHA-512 (RFC 5802, RFC 7677) for the SASL front
 *
 * Users come from --scram-user NAME:PASSWORD.  At startup each password is
 * turned into what a Kafka broker stores for a SCRAM user (KIP-84): a random
 * 16-byte salt, 4096 iterations, SaltedPassword = PBKDF2-HMAC-SHA-512,
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
 * HMAC(SaltedPassword, "Server Key"); the password itself is wiped and never
 * kept, logged or compared.  The table is filled before any connection
 * thread starts and is read-only afterwards, so it needs no lock.
 *
 * One scram_session per connection runs the exchange:
 *	client-first  "n,,n=USER,r=CNONCE"         -> "r=CNONCE+SNONCE,s=SALT,i=4096"
 *	client-final  "c=biws,r=NONCE,p=PROOF"      -> "v=SERVERSIGNATURE"
 * The proof is checked as RFC 5802 section 3 says: ClientKey = PROOF xor
 * HMAC(StoredKey, AuthMessage) must hash to StoredKey (constant-time
 * compare).  Channel binding ("p=") is refused; an authzid is accepted
 * only when it names the same user.  An unknown user and a wrong password
 * fail alike, with the message Kafka uses.
 *
 * IDENTIFICATION
 *	  devbroker/scram.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base64.h"
#include "devbroker.h"

#define SCRAM_ITERATIONS	4096
#define SCRAM_SALT_LEN		16
#define SCRAM_KEY_LEN		SHA512_DIGEST_LENGTH
#define SCRAM_NAME_MAX		256
#define SCRAM_MAX_USERS		64

typedef struct scram_user
{
	char		name[SCRAM_NAME_MAX];
	uint8_t		salt[SCRAM_SALT_LEN];
	uint8_t		stored_key[SCRAM_KEY_LEN];
	uint8_t		server_key[SCRAM_KEY_LEN];
} scram_user;

static scram_user users[SCRAM_MAX_USERS];
static int	nusers;

const char *const scram_failure_message =
	"Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512";

static void
hmac512(const uint8_t *key, size_t keylen, const char *data, size_t len,
		uint8_t *out)
{
	unsigned int outlen = SCRAM_KEY_LEN;

	HMAC(EVP_sha512(), key, (int) keylen, (const unsigned char *) data, len,
		 out, &outlen);
}

int
scram_user_count(void)
{
	return nusers;
}

/* --scram-user NAME:PASSWORD; the argument's password is wiped. */
int
scram_add_user(char *spec, char *err, size_t errlen)
{
	char	   *colon = strchr(spec, ':');
	size_t		namelen = colon ? (size_t) (colon - spec) : 0;
	scram_user *u;
	uint8_t		salted[SCRAM_KEY_LEN];
	uint8_t		client_key[SCRAM_KEY_LEN];
	int			i;

	if (colon == NULL || namelen == 0 || colon[1] == '\0')
	{
		snprintf(err, errlen, "invalid --scram-user: expected NAME:PASSWORD, both non-empty");
		return -1;
	}
	if (namelen >= SCRAM_NAME_MAX || memchr(spec, ',', namelen) || memchr(spec, '=', namelen))
	{
		snprintf(err, errlen, "invalid --scram-user name: at most %d characters, no \",\" or \"=\"",
				 SCRAM_NAME_MAX - 1);
		return -1;
	}
	for (i = 0; i < nusers; i++)
		if (strlen(users[i].name) == namelen && memcmp(users[i].name, spec, namelen) == 0)
		{
			snprintf(err, errlen, "--scram-user \"%.*s\" is given twice", (int) namelen, spec);
			return -1;
		}
	if (nusers == SCRAM_MAX_USERS)
	{
		snprintf(err, errlen, "too many --scram-user options: at most %d", SCRAM_MAX_USERS);
		return -1;
	}
	u = &users[nusers];
	memcpy(u->name, spec, namelen);
	u->name[namelen] = '\0';
	if (RAND_bytes(u->salt, SCRAM_SALT_LEN) != 1 ||
		PKCS5_PBKDF2_HMAC(colon + 1, (int) strlen(colon + 1), u->salt,
						  SCRAM_SALT_LEN, SCRAM_ITERATIONS, EVP_sha512(),
						  SCRAM_KEY_LEN, salted) != 1)
	{
		snprintf(err, errlen, "could not derive the SCRAM keys (OpenSSL failed)");
		return -1;
	}
	OPENSSL_cleanse(colon + 1, strlen(colon + 1));
	hmac512(salted, SCRAM_KEY_LEN, "Client Key", 10, client_key);
	SHA512(client_key, SCRAM_KEY_LEN, u->stored_key);
	hmac512(salted, SCRAM_KEY_LEN, "Server Key", 10, u->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	nusers++;
	return 0;
}

/* the value of attribute "a=" in a comma-separated list, or NULL */
static const char *
attr(const char *msg, char a, size_t *len)
{
	const char *p = msg;

	while (p != NULL && *p != '\0')
	{
		const char *end = strchr(p, ',');

		if (p[0] == a && p[1] == '=')
		{
			*len = (end ? (size_t) (end - p) : strlen(p)) - 2;
			return p + 2;
		}
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

/* saslname (RFC 5802 5.1): "=2C" is ",", "=3D" is "="; false if malformed */
static bool
unescape_name(const char *in, size_t len, char *out, size_t outmax)
{
	size_t		o = 0;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = in[i];

		if (c == '=')
		{
			if (i + 2 >= len)
				return false;
			if (in[i + 1] == '2' && in[i + 2] == 'C')
				c = ',';
			else if (in[i + 1] == '3' && in[i + 2] == 'D')
				c = '=';
			else
				return false;
			i += 2;
		}
		if (o + 1 >= outmax)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return o > 0;
}

static char *
copy_str(const char *s, size_t n)
{
	char	   *r = malloc(n + 1);

	if (r != NULL)
	{
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

void
scram_session_free(scram_session *s)
{
	free(s->client_first_bare);
	free(s->server_first);
	free(s->gs2_header);
	free(s->nonce);
	memset(s, 0, sizeof(*s));
}

static int
fail(scram_session *s, char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	s->state = SCRAM_FAILED;
	return -1;
}

static int
client_first(scram_session *s, const char *in, char **out,
			 char *why, size_t whylen)
{
	const char *c1 = strchr(in, ',');
	const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
	const char *v;
	size_t		vlen;
	uint8_t		rnd[18];
	char		snonce[TK_B64_LEN(18) + 1];
	char		salt[TK_B64_LEN(SCRAM_SALT_LEN) + 1];
	int			i;
	size_t		n;

	if (c2 == NULL || (in[0] != 'n' && in[0] != 'y') || c1 != in + 1)
		return fail(s, why, whylen, in[0] == 'p'
					? "channel binding is not supported" : "malformed client-first message");
	s->gs2_header = copy_str(in, (size_t) (c2 - in + 1));
	s->client_first_bare = strdup(c2 + 1);
	if (s->gs2_header == NULL || s->client_first_bare == NULL)
		return fail(s, why, whylen, "out of memory");
	v = attr(s->client_first_bare, 'n', &vlen);
	if (v == NULL || v != s->client_first_bare + 2 ||
		!unescape_name(v, vlen, s->user_name, sizeof(s->user_name)))
		return fail(s, why, whylen, "malformed user name in client-first message");
	/* an authzid, if any, must be the user itself */
	v = c1[1] == 'a' && c1[2] == '=' ? c1 + 3 : NULL;
	if (v != NULL)
	{
		char		authzid[SCRAM_NAME_MAX];

		if (!unescape_name(v, (size_t) (c2 - v), authzid, sizeof(authzid)) ||
			strcmp(authzid, s->user_name) != 0)
			return fail(s, why, whylen, "authorization identity differs from the user");
	}
	v = attr(s->client_first_bare, 'r', &vlen);
	if (v == NULL || vlen == 0)
		return fail(s, why, whylen, "client-first message has no nonce");
	s->user = NULL;
	for (i = 0; i < nusers; i++)
		if (strcmp(users[i].name, s->user_name) == 0)
			s->user = &users[i];
	if (s->user == NULL)
		return fail(s, why, whylen, "unknown user");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return fail(s, why, whylen, "no random bytes");
	tk_b64_encode(rnd, sizeof(rnd), snonce, false);
	tk_b64_encode(s->user->salt, SCRAM_SALT_LEN, salt, false);
	n = vlen + strlen(snonce);
	s->nonce = malloc(n + 1);
	s->server_first = malloc(n + strlen(salt) + 32);
	if (s->nonce == NULL || s->server_first == NULL)
		return fail(s, why, whylen, "out of memory");
	snprintf(s->nonce, n + 1, "%.*s%s", (int) vlen, v, snonce);
	sprintf(s->server_first, "r=%s,s=%s,i=%d", s->nonce, salt, SCRAM_ITERATIONS);
	*out = strdup(s->server_first);
	s->state = SCRAM_WAIT_FINAL;
	return *out ? 0 : fail(s, why, whylen, "out of memory");
}

static int
client_final(scram_session *s, const char *in, char **out,
			 char *why, size_t whylen)
{
	const char *proof_at = strstr(in, ",p=");
	const char *v;
	size_t		vlen;
	char		cbind[TK_B64_LEN(SCRAM_NAME_MAX * 2) + 1];
	uint8_t		proof[SCRAM_KEY_LEN + 4];
	size_t		prooflen;
	uint8_t		sig[SCRAM_KEY_LEN];
	uint8_t		key[SCRAM_KEY_LEN];
	uint8_t		hashed[SCRAM_KEY_LEN];
	char	   *authmsg;
	size_t		alen;
	char		b64sig[TK_B64_LEN(SCRAM_KEY_LEN) + 1];
	size_t		n;
	int			i;
	bool		ok;

	if (proof_at == NULL || strchr(proof_at + 3, ',') != NULL)
		return fail(s, why, whylen, "malformed client-final message");
	v = attr(in, 'c', &vlen);
	if (strlen(s->gs2_header) > SCRAM_NAME_MAX * 2)
		return fail(s, why, whylen, "malformed client-final message");
	tk_b64_encode((const uint8_t *) s->gs2_header, strlen(s->gs2_header), cbind, false);
	if (v != in + 2 || vlen != strlen(cbind) || memcmp(v, cbind, vlen) != 0)
		return fail(s, why, whylen, "channel binding data does not match");
	/*
	 * The nonce must END with the server-first nonce, as Kafka checks it:
	 * librdkafka 2.0.2 sends its client nonce once more in front of it.
	 */
	v = attr(in, 'r', &vlen);
	n = strlen(s->nonce);
	if (v == NULL || vlen < n || memcmp(v + vlen - n, s->nonce, n) != 0)
		return fail(s, why, whylen, "nonce does not match");
	if (!tk_b64_decode(proof_at + 3, proof, sizeof(proof), &prooflen) ||
		prooflen != SCRAM_KEY_LEN)
		return fail(s, why, whylen, "malformed client proof");

	/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
	alen = strlen(s->client_first_bare) + strlen(s->server_first) + (size_t) (proof_at - in) + 2;
	authmsg = malloc(alen + 1);
	if (authmsg == NULL)
		return fail(s, why, whylen, "out of memory");
	snprintf(authmsg, alen + 1, "%s,%s,%.*s", s->client_first_bare,
			 s->server_first, (int) (proof_at - in), in);
	hmac512(s->user->stored_key, SCRAM_KEY_LEN, authmsg, alen, sig);
	for (i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	SHA512(key, SCRAM_KEY_LEN, hashed);
	ok = CRYPTO_memcmp(hashed, s->user->stored_key, SCRAM_KEY_LEN) == 0;
	if (ok)
		hmac512(s->user->server_key, SCRAM_KEY_LEN, authmsg, alen, sig);
	free(authmsg);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok)
		return fail(s, why, whylen, "wrong password");
	tk_b64_encode(sig, SCRAM_KEY_LEN, b64sig, false);
	*out = malloc(strlen(b64sig) + 3);
	if (*out == NULL)
		return fail(s, why, whylen, "out of memory");
	sprintf(*out, "v=%s", b64sig);
	s->state = SCRAM_DONE;
	return 1;
}

/*
 * Feed one client message (not NUL-terminated).  Returns 0 with *out (a
 * malloc'd string) to send and more to come, 1 with *out when the client
 * is authenticated, -1 when it is refused (*why says why, for the log;
 * the client is told only scram_failure_message).
 */
int
scram_step(scram_session *s, const uint8_t *in, size_t inlen, char **out,
		   char *why, size_t whylen)
{
	char	   *msg;
	int			rc;

	*out = NULL;
	if (inlen > 4096 || memchr(in, '\0', inlen) != NULL)
		return fail(s, why, whylen, "malformed SCRAM message");
	msg = copy_str((const char *) in, inlen);
	if (msg == NULL)
		return fail(s, why, whylen, "out of memory");
	if (s->state == SCRAM_WAIT_FIRST)
		rc = client_first(s, msg, out, why, whylen);
	else if (s->state == SCRAM_WAIT_FINAL)
		rc = client_final(s, msg, out, why, whylen);
	else
		rc = fail(s, why, whylen, "unexpected SCRAM message");
	free(msg);
	return rc;
}
