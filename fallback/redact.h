/* redact.h — privacy-preserving spill-over: replace the personal data that
 * the PII detectors find by typed placeholders before a request leaves the
 * machine ("jane@example.com" -> "[EMAIL_1]"), and put the original values
 * back into the cloud's answer, whole or while it streams.
 *
 * One sw_redactor lives for one request. Within it the same value (the same
 * bytes) always gets the same placeholder, across every text of the request
 * (all messages, system and tool content included). Placeholders are
 * "[" KIND "_" N "]" with KIND one of EMAIL, PHONE, CARD, IBAN, SSN and N a
 * decimal number without leading zeros, counted per kind from 1. A
 * placeholder that already appears literally in the request's text is never
 * issued (it is skipped), so restoring cannot turn the user's own literal
 * "[EMAIL_1]" into someone's address.
 *
 * The mapping is kept only in this object's memory and wiped when it is
 * freed; nothing here logs. What a ledger may record is the count of
 * replaced spans and the kinds (sw_redactor_spans, sw_redactor_kinds).
 *
 * Restoring a stream (sw_restore_feed): text that cannot be part of a
 * placeholder goes out at once; only a tail that is a proper prefix of an
 * issued placeholder ("[EM", "[EMAIL_1") is held back until the next chunk
 * decides it, so no half placeholder is ever emitted and no other byte waits.
 *
 * Threading: a redactor and its restore streams belong to one request; use
 * them from one thread at a time. The sw_pii is shared and read-only. */
#ifndef SW_REDACT_H
#define SW_REDACT_H

#include <cjson/cJSON.h>

#include "pii.h"
#include "sw_base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sw_redactor sw_redactor;

/* pii is borrowed and must outlive the redactor. */
sw_status sw_redactor_create(const sw_pii *pii, sw_redactor **out, sw_err *err);
/* Wipes the stored values, then frees. NULL is a no-op. */
void sw_redactor_free(sw_redactor *r);

/* Mark every placeholder-shaped string in text as taken, so that it is never
 * issued. sw_redact_chat_body does this for all of a body's texts before it
 * replaces anything; call it yourself for texts redacted one by one. */
sw_status sw_redactor_reserve(sw_redactor *r, const char *text, size_t len, sw_err *err);

/* Replace every detected span of text[len] (borrowed). *out is malloc'd and
 * NUL-terminated (caller frees), *out_len its length. Reserves text's own
 * placeholder-shaped strings first. SW_E_NOMEM, or SW_E_INTERNAL when a
 * detector fails (then nothing may be sent). */
sw_status sw_redact_text(sw_redactor *r, const char *text, size_t len, char **out,
                         size_t *out_len, sw_err *err);

/* Redact an OpenAI chat body in place: every text that sw_chat_texts_each
 * visits in body.messages, and the "stop" string(s). */
sw_status sw_redact_chat_body(sw_redactor *r, cJSON *body, sw_err *err);

/* Spans replaced so far (occurrences), distinct values, and the kinds seen. */
size_t sw_redactor_spans(const sw_redactor *r);
size_t sw_redactor_values(const sw_redactor *r);
unsigned sw_redactor_kinds(const sw_redactor *r);

/* Put the original values back into a whole text: every issued placeholder
 * is replaced, anything else is copied. *out malloc'd, NUL-terminated. */
sw_status sw_restore_text(const sw_redactor *r, const char *text, size_t len, char **out,
                          size_t *out_len, sw_err *err);

/* Restore, in place, every choice of an OpenAI chat.completion (borrowed,
 * changed): message.content and each tool call's function.arguments. */
sw_status sw_restore_chat_response(const sw_redactor *r, cJSON *response, sw_err *err);

/* Restoring a stream: feed the chunks in order; each call returns (in *out,
 * malloc'd, possibly empty) what may be emitted now. sw_restore_finish
 * returns the held tail when the stream ends (a prefix that never completed
 * is not a placeholder and goes out as it was). */
typedef struct sw_restore_stream sw_restore_stream;
/* r is borrowed and must outlive the stream. */
sw_status sw_restore_stream_create(const sw_redactor *r, sw_restore_stream **out, sw_err *err);
void sw_restore_stream_free(sw_restore_stream *s); /* NULL is a no-op; wipes what it held */
sw_status sw_restore_feed(sw_restore_stream *s, const char *chunk, size_t len, char **out,
                          size_t *out_len, sw_err *err);
sw_status sw_restore_finish(sw_restore_stream *s, char **out, size_t *out_len, sw_err *err);
/* Bytes held back right now (for tests: never more than one placeholder). */
size_t sw_restore_held(const sw_restore_stream *s);

/* Visit every text of an OpenAI chat "messages" array (borrowed) that a
 * person may have written into: each message's "content" when it is a
 * string, the "text" of each content part, and the "arguments" of each
 * tool call. fn gets the cJSON string item; a non-OK return stops the walk
 * and is returned. Other shapes are skipped (validation is the parser's). */
typedef sw_status (*sw_chat_text_fn)(void *user, const cJSON *text_item, sw_err *err);
sw_status sw_chat_texts_each(const cJSON *messages, sw_chat_text_fn fn, void *user, sw_err *err);

#ifdef __cplusplus
}
#endif
#endif
