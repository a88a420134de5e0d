/*-------------------------------------------------------------------------
 *
 * webpush.c
 *	  Web Push (RFC 8030, 8291, 8292) and JSON gateway delivery
 *
 * Encryption (RFC 8291 s3.4, with the aes128gcm coding of RFC 8188):
 *
 *	 as_key		= a fresh P-256 key pair, one per message
 *	 ecdh		= ECDH(as_key.private, ua_public)		 (ua_public = p256dh)
 *	 key_info	= "WebPush: info" || 0x00 || ua_public || as_public
 *	 IKM		= HKDF(salt = auth_secret, ikm = ecdh, info = key_info, 32)
 *	 salt		= 16 random bytes
 *	 CEK		= HKDF(salt, IKM, "Content-Encoding: aes128gcm" || 0x00, 16)
 *	 NONCE		= HKDF(salt, IKM, "Content-Encoding: nonce" || 0x00, 12)
 *	 body		= salt(16) | rs(4) = 4096 | idlen(1) = 65 | keyid = as_public
 *				  | AES-128-GCM(CEK, NONCE, payload || 0x02) | tag(16)
 *
 * One record only: RFC 8291 s4 limits a push message to 4096 bytes, so the
 * payload can be at most 4096 - 86 - 16 - 1 = 3993 bytes, and the record
 * (the last one) carries the 0x02 delimiter and no padding.
 *
 * VAPID (RFC 8292): the JWT is {"typ":"JWT","alg":"ES256"} .
 * {"aud":origin,"exp":now+12h,"sub":subject}, signed with ECDSA P-256 /
 * SHA-256.  OpenSSL gives the signature DER-encoded; JWS (RFC 7518 s3.4)
 * wants r || s, 32 bytes each, so it is converted.  A JWT is signed per
 * message (about 30 us); caching per origin is left for when it shows up
 * in a profile.
 *
 * HTTP: one libcurl easy handle per send, no redirects (a push service
 * does not redirect, and a redirect must not carry the Authorization
 * header elsewhere), http and https only, "Expect:" disabled so a small
 * POST is not held back waiting for 100-continue.  The first bytes of the
 * response body go into the error text: push services explain a refusal
 * there ("invalid JWT", "payload too large").
 *
 * Secrets: the VAPID private key, the ECDH secret and the auth secret are
 * never put in an error text; derived keys are cleansed after use.  The
 * endpoint URL is a capability, so errors name only its origin.
 *
 * IDENTIFICATION
 *	  consumers/notify/webpush.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "base64.h"
#include "delivery_int.h"
#include "strbuf.h"
#include "webpush.h"

#define P256_POINT_LEN	65		/* 0x04 || x || y */
#define P256_SCALAR_LEN 32
#define AUTH_SECRET_LEN 16
#define RECORD_SIZE		4096
#define HEADER_LEN		(16 + 4 + 1 + P256_POINT_LEN)
#define TAG_LEN			16
#define JWT_LIFETIME	(12 * 3600) /* RFC 8292 s2: at most 24 h */
#define REPLY_SNIPPET	200

struct tkn_vapid
{
	EVP_PKEY   *key;
	char	   *subject;
	char		public_b64[TK_B64_LEN(P256_POINT_LEN) + 1];
};

void
tkn_push_options_init(tkn_push_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->ttl = 86400;
	opt->timeout_ms = 10000;
}

/* the first OpenSSL error as text, for an error message */
static const char *
ossl_error(void)
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
static bool
ec_public_point(EVP_PKEY *key, unsigned char out[P256_POINT_LEN])
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
static EVP_PKEY *
p256_from_parts(const BIGNUM *priv, const unsigned char pub[P256_POINT_LEN])
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
		tkn_errorf(err, errlen, "VAPID key: could not derive the public key: %s", ossl_error());
		goto done;
	}
	key = p256_from_parts(priv, point);
	if (key == NULL)
		tkn_errorf(err, errlen, "VAPID key: could not build the key: %s", ossl_error());
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
				   where, ossl_error());
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
			tkn_errorf(err, errlen, "VAPID key %s: cannot open it: %s", where, ossl_error());
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
	if (!ec_public_point(v->key, point))
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

/* HKDF-SHA-256 (RFC 5869), extract and expand */
static bool
hkdf(const unsigned char *salt, size_t saltlen, const unsigned char *ikm, size_t ikmlen,
	 const unsigned char *info, size_t infolen, unsigned char *out, size_t outlen)
{
	EVP_KDF    *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM	params[5];
	bool		ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikmlen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, saltlen);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, infolen);
	params[4] = OSSL_PARAM_construct_end();
	ok = kctx != NULL && EVP_KDF_derive(kctx, out, outlen, params) > 0;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok;
}

static bool
ecdh(EVP_PKEY *mine, EVP_PKEY *peer, unsigned char out[32])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
	size_t		len = 32;
	bool		ok;

	ok = ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 &&
		EVP_PKEY_derive_set_peer(ctx, peer) > 0 &&
		EVP_PKEY_derive(ctx, out, &len) > 0 && len == 32;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static bool
aes128gcm_seal(const unsigned char key[16], const unsigned char nonce[12],
			   const unsigned char *in, size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int			n = 0,
				fin = 0;
	bool		ok;

	ok = ctx != NULL &&
		EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) &&
		EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) &&
		EVP_EncryptUpdate(ctx, out, &n, in, (int) len) &&
		EVP_EncryptFinal_ex(ctx, out + n, &fin) &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, out + n + fin);
	EVP_CIPHER_CTX_free(ctx);
	return ok;
}

size_t
tkn_webpush_encrypt(const tkn_push_subscription *sub, const char *payload, size_t len,
					unsigned char *out, char *err, size_t errlen)
{
	static const char info_prefix[] = "WebPush: info";	/* the NUL is part of it */
	static const char cek_info[] = "Content-Encoding: aes128gcm";
	static const char nonce_info[] = "Content-Encoding: nonce";
	unsigned char ua_public[P256_POINT_LEN + 1];
	unsigned char auth[AUTH_SECRET_LEN + 1];
	unsigned char as_public[P256_POINT_LEN];
	unsigned char key_info[sizeof(info_prefix) + 2 * P256_POINT_LEN];
	unsigned char secret[32],
				ikm[32],
				salt[16],
				cek[16],
				nonce[12];
	unsigned char *plain = NULL;
	size_t		ua_len = 0,
				auth_len = 0,
				total = 0;
	EVP_PKEY   *peer = NULL;
	EVP_PKEY   *eph = NULL;

	if (len > TKN_WEBPUSH_MAX_PAYLOAD)
	{
		tkn_errorf(err, errlen, "push payload is %zu bytes; Web Push allows at most %d "
				   "(RFC 8291 s4): send less, e.g. a title and a task id", len,
				   TKN_WEBPUSH_MAX_PAYLOAD);
		return 0;
	}
	if (sub->p256dh == NULL ||
		!tk_b64_decode(sub->p256dh, ua_public, sizeof(ua_public), &ua_len) ||
		ua_len != P256_POINT_LEN || ua_public[0] != 0x04)
	{
		tkn_errorf(err, errlen, "push subscription: p256dh must be the base64url of a 65-byte "
				   "uncompressed P-256 point (getKey(\"p256dh\") of the PushSubscription)");
		return 0;
	}
	if (sub->auth == NULL ||
		!tk_b64_decode(sub->auth, auth, sizeof(auth), &auth_len) ||
		auth_len != AUTH_SECRET_LEN)
	{
		tkn_errorf(err, errlen, "push subscription: auth must be the base64url of a 16-byte "
				   "secret (getKey(\"auth\") of the PushSubscription)");
		goto done;
	}
	peer = p256_from_parts(NULL, ua_public);
	if (peer == NULL)
	{
		ERR_clear_error();
		tkn_errorf(err, errlen, "push subscription: p256dh is not a point on the P-256 curve; "
				   "the subscription is corrupt, ask the browser for a new one");
		goto done;
	}
	eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (eph == NULL || !ec_public_point(eph, as_public) || !ecdh(eph, peer, secret))
	{
		tkn_errorf(err, errlen, "push encryption: ECDH failed: %s", ossl_error());
		goto done;
	}

	memcpy(key_info, info_prefix, sizeof(info_prefix));
	memcpy(key_info + sizeof(info_prefix), ua_public, P256_POINT_LEN);
	memcpy(key_info + sizeof(info_prefix) + P256_POINT_LEN, as_public, P256_POINT_LEN);
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
		!hkdf(auth, AUTH_SECRET_LEN, secret, sizeof(secret), key_info, sizeof(key_info),
			  ikm, sizeof(ikm)) ||
		!hkdf(salt, sizeof(salt), ikm, sizeof(ikm), (const unsigned char *) cek_info,
			  sizeof(cek_info), cek, sizeof(cek)) ||
		!hkdf(salt, sizeof(salt), ikm, sizeof(ikm), (const unsigned char *) nonce_info,
			  sizeof(nonce_info), nonce, sizeof(nonce)))
	{
		tkn_errorf(err, errlen, "push encryption: key derivation failed: %s", ossl_error());
		goto done;
	}

	/* header: salt | rs | idlen | keyid */
	memcpy(out, salt, 16);
	out[16] = (RECORD_SIZE >> 24) & 0xff;
	out[17] = (RECORD_SIZE >> 16) & 0xff;
	out[18] = (RECORD_SIZE >> 8) & 0xff;
	out[19] = RECORD_SIZE & 0xff;
	out[20] = P256_POINT_LEN;
	memcpy(out + 21, as_public, P256_POINT_LEN);

	/* the one (last) record: payload || 0x02, no padding */
	plain = malloc(len + 1);
	if (plain == NULL)
	{
		tkn_errorf(err, errlen, "out of memory");
		goto done;
	}
	if (len > 0)
		memcpy(plain, payload, len);
	plain[len] = 0x02;
	if (!aes128gcm_seal(cek, nonce, plain, len + 1, out + HEADER_LEN))
	{
		tkn_errorf(err, errlen, "push encryption: AES-128-GCM failed: %s", ossl_error());
		goto done;
	}
	total = HEADER_LEN + len + 1 + TAG_LEN;

done:
	if (plain != NULL)
	{
		OPENSSL_cleanse(plain, len + 1);
		free(plain);
	}
	OPENSSL_cleanse(auth, sizeof(auth));
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(ikm, sizeof(ikm));
	OPENSSL_cleanse(cek, sizeof(cek));
	OPENSSL_cleanse(nonce, sizeof(nonce));
	EVP_PKEY_free(eph);
	EVP_PKEY_free(peer);
	return total;
}

/*
 * "scheme://host[:port]" of an http(s) URL, lower case, the port only when
 * it is not the scheme's default: the JWT's aud (RFC 8292 s2).
 */
static bool
url_origin(const char *url, char *out, size_t outlen)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *host = NULL,
			   *port = NULL;
	bool		ok = false;
	char	   *p;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto done;
	if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
		goto done;
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT) != CURLUE_OK)
		port = NULL;
	for (p = host; *p; p++)
		*p = (char) tolower((unsigned char) *p);
	ok = (size_t) snprintf(out, outlen, "%s://%s%s%s", scheme, host,
						   port ? ":" : "", port ? port : "") < outlen;
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
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
static bool
vapid_header(const tkn_vapid *v, const char *origin, tk_strbuf *out)
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

typedef struct reply_buf
{
	char		data[REPLY_SNIPPET];
	size_t		len;
} reply_buf;

static size_t
reply_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	reply_buf  *r = userdata;
	size_t		n = size * nmemb;
	size_t		room = sizeof(r->data) - r->len;

	memcpy(r->data + r->len, ptr, n < room ? n : room);
	r->len += n < room ? n : room;
	return n;					/* read and drop the rest */
}

static const char *
status_advice(long status, bool vapid)
{
	switch (status)
	{
		case 400:
			return "the request was rejected as malformed";
		case 401:
		case 403:
			return vapid ? "the VAPID authorization was refused: check that the VAPID key "
				"is the one the subscription was made with (applicationServerKey)"
				: "the authorization was refused: check the gateway's credentials";
		case 404:
		case 410:
			return "the subscription expired or was unsubscribed: remove it";
		case 413:
			return "the payload is too large: send less";
		case 429:
			return "rate limited: retry later";
		default:
			return status >= 500 ? "server error: retry later" : "the message was refused";
	}
}

/*
 * POST body to url with the given extra headers; classify the outcome.
 * what names the receiver in error texts (an origin, never a whole URL).
 */
static tkn_delivery
http_post(const char *url, struct curl_slist *headers, const void *body, size_t len,
		  const tkn_push_options *opt, const char *what, bool vapid,
		  char *err, size_t errlen)
{
	char		curl_err[CURL_ERROR_SIZE] = "";
	char		reply[REPLY_SNIPPET + 1];
	reply_buf	rb = {.len = 0};
	tkn_delivery d = tkn_outcome(TKN_TRANSIENT, 0);
	curl_off_t	retry_after = 0;
	CURLcode	rc;
	CURL	   *h = curl_easy_init();

	if (h == NULL)
	{
		tkn_errorf(err, errlen, "could not create a libcurl handle (out of memory?)");
		return d;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, TKN_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, opt->timeout_ms > 0 ? opt->timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, reply_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &rb);
	if (opt->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, opt->ca_file);

	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
	{
		if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
		{
			d.result = TKN_PERMANENT;
			tkn_errorf(err, errlen, "%s: %s: the URL must be http(s)://host/...",
					   what, curl_easy_strerror(rc));
		}
		else
			tkn_errorf(err, errlen, "%s: %s (will retry)", what,
					   curl_err[0] ? curl_err : curl_easy_strerror(rc));
		curl_easy_cleanup(h);
		return d;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &d.status);
	if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
		d.retry_after = (long) retry_after;
	curl_easy_cleanup(h);

	if (d.status >= 200 && d.status < 300)
		d.result = TKN_DELIVERED;
	else if (d.status == 404 || d.status == 410)
		d.result = TKN_GONE;
	else if (d.status == 408 || d.status == 429 || d.status >= 500)
		d.result = TKN_TRANSIENT;
	else
		d.result = TKN_PERMANENT;
	if (d.result != TKN_DELIVERED)
	{
		tkn_quote_reply(reply, sizeof(reply), rb.data, rb.len);
		tkn_errorf(err, errlen, "%s answered HTTP %ld: %s%s%s%s", what, d.status,
				   status_advice(d.status, vapid), reply[0] ? " (response: \"" : "", reply,
				   reply[0] ? "\")" : "");
	}
	return d;
}

/* append a header line; on failure the list is kept and *failed is set */
static void
add_header(struct curl_slist **list, const char *line, bool *failed)
{
	struct curl_slist *l = line ? curl_slist_append(*list, line) : NULL;

	if (l == NULL)
		*failed = true;
	else
		*list = l;
}

static bool
valid_urgency(const char *u)
{
	return strcmp(u, "very-low") == 0 || strcmp(u, "low") == 0 ||
		strcmp(u, "normal") == 0 || strcmp(u, "high") == 0;
}

static bool
valid_topic(const char *t)
{
	size_t		n = strlen(t);
	const char *p;

	if (n == 0 || n > 32)
		return false;
	for (p = t; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
			return false;
	return true;
}

tkn_delivery
tkn_webpush_send(const tkn_vapid *v, const tkn_push_subscription *sub,
				 const char *payload, size_t len, const tkn_push_options *opt,
				 char *err, size_t errlen)
{
	tkn_push_options defaults;
	char		origin[512];
	char		what[600];
	const char *urgency;
	unsigned char *body = NULL;
	size_t		bodylen;
	tk_strbuf	auth;
	tk_strbuf	line;
	struct curl_slist *headers = NULL;
	bool		failed = false;
	tkn_delivery d = tkn_outcome(TKN_PERMANENT, 0);

	if (opt == NULL)
	{
		tkn_push_options_init(&defaults);
		opt = &defaults;
	}
	urgency = opt->urgency ? opt->urgency : "normal";
	if (sub->endpoint == NULL || !url_origin(sub->endpoint, origin, sizeof(origin)))
	{
		tkn_errorf(err, errlen, "push subscription: the endpoint is not an http(s) URL");
		return d;
	}
	snprintf(what, sizeof(what), "push service %s", origin);
	if (!valid_urgency(urgency))
	{
		tkn_errorf(err, errlen, "push urgency \"%.20s\" is not one of very-low, low, normal, "
				   "high (RFC 8030 s5.3)", urgency);
		return d;
	}
	if (opt->topic != NULL && !valid_topic(opt->topic))
	{
		tkn_errorf(err, errlen, "push topic must be 1 to 32 characters of the base64url "
				   "alphabet (RFC 8030 s5.4)");
		return d;
	}
	if (opt->ttl < 0)
	{
		tkn_errorf(err, errlen, "push TTL must be 0 or more seconds");
		return d;
	}
	body = malloc(len + HEADER_LEN + 1 + TAG_LEN);
	if (body == NULL)
	{
		tkn_errorf(err, errlen, "out of memory");
		return d;
	}
	bodylen = tkn_webpush_encrypt(sub, payload, len, body, err, errlen);
	if (bodylen == 0)
	{
		free(body);
		return d;
	}

	tk_strbuf_init(&auth);
	tk_strbuf_init(&line);
	if (!vapid_header(v, origin, &auth))
	{
		tkn_errorf(err, errlen, "VAPID: signing the JWT failed: %s", ossl_error());
		goto done;
	}
	add_header(&headers, auth.data, &failed);
	tk_strbuf_printf(&line, "TTL: %d", opt->ttl);
	add_header(&headers, line.data, &failed);
	tk_strbuf_reset(&line);
	tk_strbuf_printf(&line, "Urgency: %s", urgency);
	add_header(&headers, line.data, &failed);
	if (opt->topic != NULL)
	{
		tk_strbuf_reset(&line);
		tk_strbuf_printf(&line, "Topic: %s", opt->topic);
		add_header(&headers, line.data, &failed);
	}
	add_header(&headers, "Content-Encoding: aes128gcm", &failed);
	add_header(&headers, "Content-Type: application/octet-stream", &failed);
	add_header(&headers, "Expect:", &failed);
	if (failed || line.oom)
	{
		tkn_errorf(err, errlen, "out of memory");
		goto done;
	}
	d = http_post(sub->endpoint, headers, body, bodylen, opt, what, true, err, errlen);

done:
	curl_slist_free_all(headers);
	if (auth.data != NULL)
		OPENSSL_cleanse(auth.data, auth.len);
	tk_strbuf_free(&auth);
	tk_strbuf_free(&line);
	free(body);
	return d;
}

tkn_delivery
tkn_gateway_post(const char *url, const char *json, size_t len,
				 const tkn_push_options *opt, char *err, size_t errlen)
{
	tkn_push_options defaults;
	char		origin[512];
	char		what[600];
	tk_strbuf	authz;
	struct curl_slist *headers = NULL;
	bool		failed = false;
	tkn_delivery d = tkn_outcome(TKN_PERMANENT, 0);

	if (opt == NULL)
	{
		tkn_push_options_init(&defaults);
		opt = &defaults;
	}
	if (url == NULL || !url_origin(url, origin, sizeof(origin)))
	{
		tkn_errorf(err, errlen, "push gateway: the URL is not an http(s) URL");
		return d;
	}
	snprintf(what, sizeof(what), "push gateway %s", origin);
	tk_strbuf_init(&authz);
	if (opt->authorization != NULL)
	{
		if (strpbrk(opt->authorization, "\r\n") != NULL)
		{
			tkn_errorf(err, errlen, "push gateway: the authorization value contains a line break");
			return d;
		}
		tk_strbuf_printf(&authz, "Authorization: %s", opt->authorization);
		add_header(&headers, authz.data, &failed);
	}
	add_header(&headers, "Content-Type: application/json", &failed);
	add_header(&headers, "Expect:", &failed);
	if (failed || authz.oom)
		tkn_errorf(err, errlen, "out of memory");
	else
		d = http_post(url, headers, json, len, opt, what, false, err, errlen);
	curl_slist_free_all(headers);
	if (authz.data != NULL)
		OPENSSL_cleanse(authz.data, authz.len);
	tk_strbuf_free(&authz);
	return d;
}
