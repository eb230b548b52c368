/* test_chat.c — chat template detection and rendering.
 *
 * The expected strings are written out by hand from each family's official Jinja
 * template (see the reference list at the top of loader/chat.c), for the same
 * system + user + assistant + user conversation with a generation prompt. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "gguf.h"
#include "sw_test.h"

#define DS_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"

static const sw_chat_msg k_conv[] = {
    {"system", "You are helpful."},
    {"user", "Hello!"},
    {"assistant", "Hi there."},
    {"user", "How are you?"},
};
#define N_CONV (sizeof k_conv / sizeof k_conv[0])

static void expect_render(sw_chat_kind k, const sw_chat_msg *msgs, size_t n, bool add_ass,
                          const char *bos, const char *eos, const char *want) {
    char *got = NULL;
    sw_err err = {{0}};
    sw_status st = sw_chat_render(k, msgs, n, add_ass, bos, eos, &got, &err);
    if (st != SW_OK) fail_msg("%s: render failed: %s", sw_chat_kind_name(k), err.msg);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n got: [%s]\nwant: [%s]", sw_chat_kind_name(k), got, want);
    free(got);
}

/* ---- rendering, one test per family ---------------------------------------- */

static void test_render_chatml(void **state) {
    (void)state;
    expect_render(SW_CHAT_CHATML, k_conv, N_CONV, true, "<s>", "</s>",
                  "<|im_start|>system\nYou are helpful.<|im_end|>\n"
                  "<|im_start|>user\nHello!<|im_end|>\n"
                  "<|im_start|>assistant\nHi there.<|im_end|>\n"
                  "<|im_start|>user\nHow are you?<|im_end|>\n"
                  "<|im_start|>assistant\n");
}

static void test_render_llama2(void **state) {
    (void)state;
    const char *want = "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHello! [/INST]"
                       " Hi there. </s><s>[INST] How are you? [/INST]";
    expect_render(SW_CHAT_LLAMA2, k_conv, N_CONV, true, "<s>", "</s>", want);
    /* the template has no generation prompt: add_assistant changes nothing */
    expect_render(SW_CHAT_LLAMA2, k_conv, N_CONV, false, "<s>", "</s>", want);
}

static void test_render_llama3(void **state) {
    (void)state;
    expect_render(SW_CHAT_LLAMA3, k_conv, N_CONV, true, "<|begin_of_text|>", "<|eot_id|>",
                  "<|begin_of_text|>"
                  "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void test_render_mistral(void **state) {
    (void)state;
    expect_render(SW_CHAT_MISTRAL, k_conv, N_CONV, true, "<s>", "</s>",
                  "<s> [INST] You are helpful.\n\nHello! [/INST] Hi there.</s>"
                  " [INST] How are you? [/INST]");
}

static void test_render_zephyr(void **state) {
    (void)state;
    expect_render(SW_CHAT_ZEPHYR, k_conv, N_CONV, true, "<s>", "</s>",
                  "<|system|>\nYou are helpful.</s>\n"
                  "<|user|>\nHello!</s>\n"
                  "<|assistant|>\nHi there.</s>\n"
                  "<|user|>\nHow are you?</s>\n"
                  "<|assistant|>\n");
}

static void test_render_gemma(void **state) {
    (void)state;
    expect_render(SW_CHAT_GEMMA, k_conv, N_CONV, true, "<bos>", "<eos>",
                  "<bos><start_of_turn>user\nYou are helpful.\n\nHello!<end_of_turn>\n"
                  "<start_of_turn>model\nHi there.<end_of_turn>\n"
                  "<start_of_turn>user\nHow are you?<end_of_turn>\n"
                  "<start_of_turn>model\n");
}

static void test_render_phi3(void **state) {
    (void)state;
    expect_render(SW_CHAT_PHI3, k_conv, N_CONV, true, "<s>", "<|endoftext|>",
                  "<|system|>\nYou are helpful.<|end|>\n"
                  "<|user|>\nHello!<|end|>\n"
                  "<|assistant|>\nHi there.<|end|>\n"
                  "<|user|>\nHow are you?<|end|>\n"
                  "<|assistant|>\n");
    /* without a generation prompt the official template closes with eos_token */
    expect_render(SW_CHAT_PHI3, k_conv + 1, 2, false, "<s>", "<|endoftext|>",
                  "<|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n<|endoftext|>");
}

static void test_render_deepseek(void **state) {
    (void)state;
    const char *want = DS_BOS "You are helpful.\n\nUser: Hello!\n\nAssistant: Hi there." DS_EOS
                              "User: How are you?\n\nAssistant:";
    expect_render(SW_CHAT_DEEPSEEK, k_conv, N_CONV, true, DS_BOS, DS_EOS, want);
    expect_render(SW_CHAT_DEEPSEEK2, k_conv, N_CONV, true, DS_BOS, DS_EOS, want);
}

static void test_render_deepseek3(void **state) {
    (void)state;
    expect_render(SW_CHAT_DEEPSEEK3, k_conv, N_CONV, true, DS_BOS, DS_EOS,
                  DS_BOS "You are helpful." DS_USER "Hello!" DS_ASSISTANT "Hi there." DS_EOS
                         DS_USER "How are you?" DS_ASSISTANT);
    /* system messages are gathered up front, joined by a blank line */
    const sw_chat_msg m[] = {{"system", "A"}, {"user", "u"}, {"system", "B"}};
    expect_render(SW_CHAT_DEEPSEEK3, m, 3, false, DS_BOS, DS_EOS, DS_BOS "A\n\nB" DS_USER "u");
}

/* ---- details of individual templates ------------------------------------------ */

static void test_trim_where_template_trims(void **state) {
    (void)state;
    const sw_chat_msg m[] = {{"user", "  hi \n"}};
    /* llama3 and gemma pipe content through |trim, chatml does not */
    expect_render(SW_CHAT_LLAMA3, m, 1, false, "B", "E",
                  "B<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
    expect_render(SW_CHAT_GEMMA, m, 1, false, "B", "E", "B<start_of_turn>user\nhi<end_of_turn>\n");
    expect_render(SW_CHAT_CHATML, m, 1, false, "B", "E",
                  "<|im_start|>user\n  hi \n<|im_end|>\n");
    /* llama2 strips the combined <<SYS>> + user text (so trailing user blanks go) and
     * the assistant text on its own */
    const sw_chat_msg s[] = {{"system", "S"}, {"user", "u  "}, {"assistant", "  a  "}};
    expect_render(SW_CHAT_LLAMA2, s, 3, true, "<s>", "</s>",
                  "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nu [/INST] a </s>");
}

static void test_default_and_empty_tokens(void **state) {
    (void)state;
    const sw_chat_msg m[] = {{"user", "x"}};
    /* NULL: the family's conventional text; "": omitted */
    expect_render(SW_CHAT_LLAMA3, m, 1, true, NULL, NULL,
                  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect_render(SW_CHAT_MISTRAL, m, 1, true, "", "", " [INST] x [/INST]");
    expect_render(SW_CHAT_DEEPSEEK3, m, 1, true, NULL, NULL, DS_BOS DS_USER "x" DS_ASSISTANT);
}

static void test_spells_bos_matches_render(void **state) {
    (void)state;
    /* sw_chat_spells_bos must agree with what render actually produces */
    const sw_chat_msg m[] = {{"user", "x"}};
    for (int k = 0; k < SW_CHAT_COUNT; k++) {
        char *got = NULL;
        assert_int_equal(sw_chat_render((sw_chat_kind)k, m, 1, true, "@BOS@", "@EOS@", &got, NULL),
                         SW_OK);
        bool starts = strncmp(got, "@BOS@", 5) == 0;
        if (starts != sw_chat_spells_bos((sw_chat_kind)k))
            fail_msg("%s: rendered '%s' but spells_bos=%d", sw_chat_kind_name((sw_chat_kind)k),
                     got, (int)sw_chat_spells_bos((sw_chat_kind)k));
        free(got);
    }
}

static void test_empty_conversation(void **state) {
    (void)state;
    expect_render(SW_CHAT_CHATML, NULL, 0, true, NULL, NULL, "<|im_start|>assistant\n");
    expect_render(SW_CHAT_LLAMA2, NULL, 0, true, NULL, NULL, "");
}

/* ---- errors ------------------------------------------------------------------ */

static void test_invalid_role(void **state) {
    (void)state;
    const sw_chat_msg m[] = {{"user", "a"}, {"assistant", "b"}, {"tool", "c"}};
    for (int k = 0; k < SW_CHAT_COUNT; k++) {
        char *out = (char *)"sentinel";
        sw_err err = {{0}};
        assert_int_equal(sw_chat_render((sw_chat_kind)k, m, 3, true, NULL, NULL, &out, &err),
                         SW_E_INVALID_ARG);
        assert_null(out);
        assert_non_null(strstr(err.msg, "'tool'"));
        assert_non_null(strstr(err.msg, "message 2"));
    }
    const sw_chat_msg nullrole[] = {{NULL, "a"}};
    char *out = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_chat_render(SW_CHAT_CHATML, nullrole, 1, true, NULL, NULL, &out, &err),
                     SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "message 0"));
}

static void test_alternation_enforced(void **state) {
    (void)state;
    const sw_chat_msg two_users[] = {{"user", "a"}, {"user", "b"}};
    const sw_chat_msg late_sys[] = {{"user", "a"}, {"system", "b"}};
    const sw_chat_msg sys_only[] = {{"system", "a"}};
    const sw_chat_kind strict[] = {SW_CHAT_LLAMA2, SW_CHAT_MISTRAL, SW_CHAT_GEMMA};
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL;
        sw_err err = {{0}};
        assert_int_equal(sw_chat_render(strict[i], two_users, 2, true, NULL, NULL, &out, &err),
                         SW_E_INVALID_ARG);
        assert_non_null(strstr(err.msg, "message 1"));
        assert_int_equal(sw_chat_render(strict[i], late_sys, 2, true, NULL, NULL, &out, &err),
                         SW_E_INVALID_ARG);
        assert_non_null(strstr(err.msg, "'system'"));
        assert_int_equal(sw_chat_render(strict[i], sys_only, 1, true, NULL, NULL, &out, &err),
                         SW_E_INVALID_ARG);
        assert_null(out);
    }
    /* templates without the check accept any order */
    char *out = NULL;
    assert_int_equal(sw_chat_render(SW_CHAT_CHATML, two_users, 2, true, NULL, NULL, &out, NULL),
                     SW_OK);
    free(out);
}

static void test_names(void **state) {
    (void)state;
    for (int k = 0; k < SW_CHAT_COUNT; k++) {
        sw_chat_kind got;
        const char *name = sw_chat_kind_name((sw_chat_kind)k);
        assert_int_equal(sw_chat_from_name(name, &got, NULL), SW_OK);
        assert_int_equal(got, k);
        assert_non_null(strstr(sw_chat_names(), name));
    }
    sw_chat_kind got;
    sw_err err = {{0}};
    assert_int_equal(sw_chat_from_name("vicuna", &got, &err), SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "'vicuna'"));
    assert_non_null(strstr(err.msg, "--chat-template"));
    assert_non_null(strstr(err.msg, "chatml"));
    assert_non_null(strstr(err.msg, "deepseek3"));
}

/* ---- detection from template sources ----------------------------------------- */

/* Representative sources, abridged to the parts that carry each family's markers. */
static const struct {
    const char *src;
    sw_chat_kind want;
} k_sources[] = {
    {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
     "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
     "{{ '<|im_start|>assistant\\n' }}{% endif %}",
     SW_CHAT_CHATML},
    {"{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}"
     "{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message "
     "%}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + "
     "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] "
     "' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + "
     "content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
     SW_CHAT_LLAMA2},
    {"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
     "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
     "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = "
     "bos_token + content %}{% endif %}{{ content }}{% endfor %}",
     SW_CHAT_LLAMA3},
    {"{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == 'user' %}"
     "{{- ' [INST] ' + message['content'] + ' [/INST]' }}{%- elif message['role'] == "
     "'assistant' %}{{- ' ' + message['content'] + eos_token}}{%- endif %}{%- endfor %}",
     SW_CHAT_MISTRAL},
    {"{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + "
     "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
     "'<|system|>\\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
     "'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n{% endif %}\n"
     "{% endfor %}",
     SW_CHAT_ZEPHYR},
    {"{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}"
     "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ "
     "'<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
     "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
     SW_CHAT_GEMMA},
    {"{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + "
     "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + "
     "message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}"
     "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}",
     SW_CHAT_PHI3},
    {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ 'User: "
     "' + message['content'] + '\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ "
     "'Assistant: ' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}"
     "{{ message['content'] + '\\n\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}"
     "{{ 'Assistant:' }}{% endif %}",
     SW_CHAT_DEEPSEEK2},
    {"{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if "
     "message['role'] == 'user' %}{{'" DS_USER "' + message['content']}}{%- endif %}{%- if "
     "message['role'] == 'assistant' %}{{'" DS_ASSISTANT "' + message['content'] + '" DS_EOS
     "'}}{%- endif %}{%- endfor %}{% if add_generation_prompt %}{{'" DS_ASSISTANT "'}}{% endif %}",
     SW_CHAT_DEEPSEEK3},
};

static void test_detect_sources(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_sources / sizeof k_sources[0]; i++) {
        sw_chat_kind got = SW_CHAT_COUNT;
        sw_err err = {{0}};
        sw_status st = sw_chat_detect(k_sources[i].src, &got, &err);
        if (st != SW_OK || got != k_sources[i].want)
            fail_msg("source %zu: want %s, got %s (%s)", i, sw_chat_kind_name(k_sources[i].want),
                     st == SW_OK ? sw_chat_kind_name(got) : "error", err.msg);
    }
    sw_chat_kind got;
    sw_err err = {{0}};
    assert_int_equal(sw_chat_detect("{{ messages[0]['content'] }}", &got, &err), SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "--chat-template"));
}

/* ---- detection from real GGUF vocab files ------------------------------------- */

static int open_vocab(const char *name, sw_gguf **g) {
    const char *dir = getenv("SW_SHARED_DIR");
    if (!dir) {
        print_message("skip: SW_SHARED_DIR is not set, cannot read %s\n", name);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/models/vocab/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_message("skip: %s is absent\n", path);
        return 0;
    }
    fclose(f);
    *g = sw_test_open_vocab(path);
    return 1;
}

static void detect_file(void **state, const char *name, sw_chat_kind want) {
    sw_gguf *g = NULL;
    if (!open_vocab(name, &g)) skip();
    sw_chat_kind got = SW_CHAT_COUNT;
    sw_err err = {{0}};
    sw_status st = sw_chat_from_gguf(g, &got, &err);
    sw_gguf_free(g);
    if (st != SW_OK) fail_msg("%s: %s", name, err.msg);
    assert_int_equal(got, want);
}

static void test_gguf_phi3(void **state) {
    detect_file(state, "ggml-vocab-phi-3.gguf", SW_CHAT_PHI3);
}

static void test_gguf_dbrx(void **state) {
    detect_file(state, "ggml-vocab-dbrx.gguf", SW_CHAT_CHATML);
}

static void test_gguf_without_template(void **state) {
    (void)state;
    sw_gguf *g = NULL;
    if (!open_vocab("ggml-vocab-gpt-2.gguf", &g)) skip();
    sw_chat_kind got;
    sw_err err = {{0}};
    sw_status st = sw_chat_from_gguf(g, &got, &err);
    sw_gguf_free(g);
    assert_int_equal(st, SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "chat_template"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_chatml),
        cmocka_unit_test(test_render_llama2),
        cmocka_unit_test(test_render_llama3),
        cmocka_unit_test(test_render_mistral),
        cmocka_unit_test(test_render_zephyr),
        cmocka_unit_test(test_render_gemma),
        cmocka_unit_test(test_render_phi3),
        cmocka_unit_test(test_render_deepseek),
        cmocka_unit_test(test_render_deepseek3),
        cmocka_unit_test(test_trim_where_template_trims),
        cmocka_unit_test(test_default_and_empty_tokens),
        cmocka_unit_test(test_spells_bos_matches_render),
        cmocka_unit_test(test_empty_conversation),
        cmocka_unit_test(test_invalid_role),
        cmocka_unit_test(test_alternation_enforced),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_detect_sources),
        cmocka_unit_test(test_gguf_phi3),
        cmocka_unit_test(test_gguf_dbrx),
        cmocka_unit_test(test_gguf_without_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
