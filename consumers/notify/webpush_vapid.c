/*-------------------------------------------------------------------------
 *
 * webpush_vapid.c
 *	  VAPID (RFC 8292): the application server's key and its signed JWT
 *
 * tkn_vapid_load() accepts a PEM file path, PEM text, or the raw 32-byte
 * private scalar as base64url (what the web-push tools print; the public
 * point is then derived).  The key must be EC P-256, which ES256 needs;
 * a PEM passphrase is never prompted for.  The public point, base64url,
 * is kept for the "k=" parameter and for tkn_vapid_public_key().
 *
 * The JWT is {"typ":"JWT","alg":"ES256"} .
 * {"aud":origin,"exp":now+12h,"sub":subject}, signed with ECDSA P-256 /
 * SHA-256.  OpenSSL gives the signature DER-encoded; JWS (RFC 7518 s3.4)
 * wants r || s, 32 bytes each, so it is converted.  A JWT is signed per
 * message (about 30 us); caching per origin is left for when it shows up
 * in a profile.
 *
 * The P-256 key helpers and tkn_ossl_error() here are also used by the
 * encryption (webpush_encrypt.c), which builds the subscription's public
 * key and reads the ephemeral key's point with them.
 *
 * Secrets: the VAPID private key is never put in an error text, and a
 * base64url value that is not a key is not echoed (it may be a mangled
 * key).  A tkn_vapid is read-only after loading and may be shared by
 * threads.
 *
 * IDENTIFICATION
 *	  consumers/notify/webpush_vapid.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "base64.h"
#include "delivery_int.h"
#include "strbuf.h"
#include "webpush_int.h"

#define JWT_LIFETIME	(12 * 3600) /* RFC 8292 s2: at most 24 h */

struct tkn_vapid
{
	EVP_PKEY   *key;
	char	   *subject;
	char		public_b64[TK_B64_LEN(P256_POINT_LEN) + 1];
};

/* the first OpenSSL error as text, for an error message */
const char *
tkn_ossl_error(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (e == 0)
		return "no detail from OpenSSL";
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

/* never prompt for a PEM passphrase */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void) buf;
	(void) size;
	(void) rwflag;
	(void) u;
	return -1;
}

/* the uncompressed public point of an EC key */
bool
tkn_ec_public_point(EVP_PKEY *key, unsigned char out[P256_POINT_LEN])
{
	size_t		len = 0;

	if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
										 out, P256_POINT_LEN, &len))
		return false;
	return len == P256_POINT_LEN && out[0] == 0x04;
}

static bool
is_p256(EVP_PKEY *key)
{
	char		group[64];

	if (!EVP_PKEY_is_a(key, "EC"))
		return false;
	if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
										group, sizeof(group), NULL))
		return false;
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* an EVP_PKEY from P-256 key material: priv may be NULL (public key only) */
EVP_PKEY *
tkn_p256_from_parts(const BIGNUM *priv, const unsigned char pub[P256_POINT_LEN])
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY   *key = NULL;

	if (bld == NULL ||
		!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
		!OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, P256_POINT_LEN) ||
		(priv != NULL && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)))
		goto done;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0)
		goto done;
	if (EVP_PKEY_fromdata(ctx, &key, priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
						  params) <= 0)
		key = NULL;
done:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return key;
}

/* a P-256 key pair from a raw 32-byte private scalar: derive the public point */
static EVP_PKEY *
p256_from_scalar(const unsigned char d[P256_SCALAR_LEN], char *err, size_t errlen)
{
	EC_GROUP   *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	BIGNUM	   *priv = BN_bin2bn(d, P256_SCALAR_LEN, NULL);
	EC_POINT   *pub = NULL;
	unsigned char point[P256_POINT_LEN];
	EVP_PKEY   *key = NULL;

	if (group == NULL || priv == NULL)
	{
		tkn_errorf(err, errlen, "VAPID key: out of memory");
		goto done;
	}
	if (BN_is_zero(priv) || BN_cmp(priv, EC_GROUP_get0_order(group)) >= 0)
	{
		tkn_errorf(err, errlen, "VAPID key: the 32 bytes are not a valid P-256 private key "
				   "(zero or not below the group order); generate a new key");
		goto done;
	}
	pub = EC_POINT_new(group);
	if (pub == NULL || !EC_POINT_mul(group, pub, priv, NULL, NULL, NULL) ||
		EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, point,
						   sizeof(point), NULL) != sizeof(point))
	{
		tkn_errorf(err, errlen, "VAPID key: could not derive the public key: %s", tkn_ossl_error());
		goto done;
	}
	key = tkn_p256_from_parts(priv, point);
	if (key == NULL)
		tkn_errorf(err, errlen, "VAPID key: could not build the key: %s", tkn_ossl_error());
done:
	EC_POINT_free(pub);
	BN_clear_free(priv);
	EC_GROUP_free(group);
	return key;
}

static EVP_PKEY *
vapid_read_pem(BIO *bio, const char *where, char *err, size_t errlen)
{
	EVP_PKEY   *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);

	if (key == NULL)
	{
		tkn_errorf(err, errlen, "VAPID key %s: not a PEM private key without passphrase "
				   "(%s); make one with \"openssl ecparam -name prime256v1 -genkey -noout\"",
				   where, tkn_ossl_error());
		return NULL;
	}
	if (!is_p256(key))
	{
		tkn_errorf(err, errlen, "VAPID key %s: not an EC P-256 (prime256v1) key; "
				   "VAPID signs with ES256, which needs one", where);
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

static EVP_PKEY *
vapid_read_key(const char *src, char *err, size_t errlen)
{
	unsigned char d[P256_SCALAR_LEN + 1];
	size_t		dlen = 0;
	EVP_PKEY   *key = NULL;
	BIO		   *bio;

	if (strncmp(src, "-----BEGIN", 10) == 0)
	{
		bio = BIO_new_mem_buf(src, -1);
		if (bio != NULL)
			key = vapid_read_pem(bio, "(PEM text)", err, errlen);
		BIO_free(bio);
		return key;
	}
	if (access(src, F_OK) == 0)
	{
		char		where[300];

		snprintf(where, sizeof(where), "file \"%s\"", src);
		bio = BIO_new_file(src, "r");
		if (bio == NULL)
		{
			tkn_errorf(err, errlen, "VAPID key %s: cannot open it: %s", where, tkn_ossl_error());
			return NULL;
		}
		key = vapid_read_pem(bio, where, err, errlen);
		BIO_free(bio);
		return key;
	}
	if (tk_b64_decode(src, d, sizeof(d), &dlen) && dlen == P256_SCALAR_LEN)
	{
		key = p256_from_scalar(d, err, errlen);
		OPENSSL_cleanse(d, sizeof(d));
		return key;
	}
	OPENSSL_cleanse(d, sizeof(d));
	/* the value may be a mangled key: do not echo it */
	tkn_errorf(err, errlen, "VAPID key: not an existing PEM file, PEM text or a base64url "
			   "32-byte P-256 private key (value not shown); check the path or the key");
	return NULL;
}

tkn_vapid *
tkn_vapid_load(const char *key_pem_or_b64, const char *subject, char *err, size_t errlen)
{
	unsigned char point[P256_POINT_LEN];
	tkn_vapid  *v;
	const char *p;

	if (key_pem_or_b64 == NULL || key_pem_or_b64[0] == '\0')
	{
		tkn_errorf(err, errlen, "VAPID key is not set; give a PEM file or a base64url private key");
		return NULL;
	}
	if (subject == NULL ||
		(strncmp(subject, "mailto:", 7) != 0 && strncmp(subject, "https:", 6) != 0))
	{
		tkn_errorf(err, errlen, "VAPID subject must be a mailto: or https: URI the push "
				   "service can reach you at (RFC 8292 s2.1), e.g. \"mailto:ops@example.com\"");
		return NULL;
	}
	for (p = subject; *p; p++)
	{
		if ((unsigned char) *p < 0x21 || *p == 0x7f)
		{
			tkn_errorf(err, errlen, "VAPID subject contains a space or control character");
			return NULL;
		}
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL || (v->subject = strdup(subject)) == NULL)
	{
		tkn_errorf(err, errlen, "out of memory");
		tkn_vapid_free(v);
		return NULL;
	}
	v->key = vapid_read_key(key_pem_or_b64, err, errlen);
	if (v->key == NULL)
	{
		tkn_vapid_free(v);
		return NULL;
	}
	if (!tkn_ec_public_point(v->key, point))
	{
		tkn_errorf(err, errlen, "VAPID key: cannot get its public key as an uncompressed point");
		tkn_vapid_free(v);
		return NULL;
	}
	tk_b64_encode(point, sizeof(point), v->public_b64, true);
	return v;
}

void
tkn_vapid_free(tkn_vapid *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_free(v->key);
	free(v->subject);
	free(v);
}

const char *
tkn_vapid_public_key(const tkn_vapid *v)
{
	return v->public_b64;
}

/* ECDSA P-256 SHA-256 over data, as the 64-byte r || s of JWS */
static bool
es256_sign(EVP_PKEY *key, const char *data, size_t len, unsigned char out[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	size_t		derlen = sizeof(der);
	const unsigned char *p = der;
	ECDSA_SIG  *sig = NULL;
	const BIGNUM *r,
			   *s;
	bool		ok = false;

	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) <= 0 ||
		EVP_DigestSign(md, der, &derlen, (const unsigned char *) data, len) <= 0)
		goto done;
	sig = d2i_ECDSA_SIG(NULL, &p, (long) derlen);
	if (sig == NULL)
		goto done;
	ECDSA_SIG_get0(sig, &r, &s);
	ok = BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32;
done:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return ok;
}

static void
append_b64url(tk_strbuf *sb, const unsigned char *data, size_t len)
{
	if (!tk_strbuf_reserve(sb, TK_B64_LEN(len) + 1))
		return;
	sb->len += tk_b64_encode(data, len, sb->data + sb->len, true);
}

/* "Authorization: vapid t=<jwt>, k=<public key>" for the endpoint's origin */
bool
tkn_vapid_header(const tkn_vapid *v, const char *origin, tk_strbuf *out)
{
	static const char jwt_header[] = "{\"typ\":\"JWT\",\"alg\":\"ES256\"}";
	tk_strbuf	claims;
	unsigned char sig[64];
	size_t		signed_from;
	bool		ok;

	tk_strbuf_init(&claims);
	tk_strbuf_puts(&claims, "{\"aud\":");
	tk_strbuf_json_string(&claims, origin);
	tk_strbuf_printf(&claims, ",\"exp\":%lld,\"sub\":", (long long) time(NULL) + JWT_LIFETIME);
	tk_strbuf_json_string(&claims, v->subject);
	tk_strbuf_putc(&claims, '}');

	tk_strbuf_puts(out, "Authorization: vapid t=");
	signed_from = out->len;
	append_b64url(out, (const unsigned char *) jwt_header, sizeof(jwt_header) - 1);
	tk_strbuf_putc(out, '.');
	append_b64url(out, (const unsigned char *) claims.data, claims.len);
	ok = !claims.oom && !out->oom &&
		es256_sign(v->key, out->data + signed_from, out->len - signed_from, sig);
	tk_strbuf_putc(out, '.');
	append_b64url(out, sig, sizeof(sig));
	tk_strbuf_printf(out, ", k=%s", v->public_b64);
	tk_strbuf_free(&claims);
	return ok && !out->oom;
}
