/*-------------------------------------------------------------------------
 *
 * webpush_encrypt.c
 *	  Web Push message encryption (RFC 8291, aes128gcm of RFC 8188)
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
 * The subscription's keys are checked here (a malformed p256dh or auth is
 * a permanent failure: the subscription is corrupt, retrying cannot help).
 *
 * Secrets: the ECDH secret and the auth secret are never put in an error
 * text; they, the derived keys and the plaintext copy are cleansed before
 * tkn_webpush_encrypt() returns.
 *
 * IDENTIFICATION
 *	  consumers/notify/webpush_encrypt.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "base64.h"
#include "delivery_int.h"
#include "webpush_int.h"

#define AUTH_SECRET_LEN 16
#define RECORD_SIZE		4096

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
	peer = tkn_p256_from_parts(NULL, ua_public);
	if (peer == NULL)
	{
		ERR_clear_error();
		tkn_errorf(err, errlen, "push subscription: p256dh is not a point on the P-256 curve; "
				   "the subscription is corrupt, ask the browser for a new one");
		goto done;
	}
	eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (eph == NULL || !tkn_ec_public_point(eph, as_public) || !ecdh(eph, peer, secret))
	{
		tkn_errorf(err, errlen, "push encryption: ECDH failed: %s", tkn_ossl_error());
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
		tkn_errorf(err, errlen, "push encryption: key derivation failed: %s", tkn_ossl_error());
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
		tkn_errorf(err, errlen, "push encryption: AES-128-GCM failed: %s", tkn_ossl_error());
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

