/* test_chat.c — chat templates as Jinja: the built-in template texts
 * (expected strings written by hand from each family's official template, for
 * a system + user + assistant + user conversation), templates from files and
 * GGUFs (named ones too), transformers' variables (tools=None, documents=None,
 * kwargs that may override the tokens but not messages) and the OpenAI
 * adaptation. The built-ins are also compared with Python's jinja2 in
 * tests/py/test_jinja.py. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "gguf.h"
#include "sw_test.h"

#define DS_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define DS_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"

static const char k_conv[] = "[{\"role\": \"system\", \"content\": \"You are helpful.\"},"
                             " {\"role\": \"user\", \"content\": \"Hello!\"},"
                             " {\"role\": \"assistant\", \"content\": \"Hi there.\"},"
                             " {\"role\": \"user\", \"content\": \"How are you?\"}]";

static sw_status render_builtin(const char *name, const char *msgs, bool agp, const char *bos,
                                const char *eos, char **out, sw_err *err) {
    sw_chat_template *t = NULL;
    sw_status st = sw_chat_template_builtin(name, &t, err);
    if (st != SW_OK) return st;
    sw_chat_input in = {.messages_json = msgs, .messages_json_len = strlen(msgs),
                        .add_generation_prompt = agp, .bos_token = bos, .eos_token = eos};
    st = sw_chat_render_template(t, &in, out, NULL, err);
    sw_chat_template_free(t);
    return st;
}

static void expect(const char *name, const char *msgs, bool agp, const char *bos, const char *eos,
                   const char *want) {
    char *got = NULL;
    sw_err err = {{0}};
    if (render_builtin(name, msgs, agp, bos, eos, &got, &err) != SW_OK)
        fail_msg("%s: render failed: %s", name, err.msg);
    if (strcmp(got, want)) fail_msg("%s:\n got: [%s]\nwant: [%s]", name, got, want);
    free(got);
}

static void test_builtins(void **state) {
    (void)state;
    expect("chatml", k_conv, true, "<s>", "</s>",
           "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
           "<|im_start|>assistant\nHi there.<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n"
           "<|im_start|>assistant\n");
    const char *l2 = "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\nHello! [/INST] Hi there. </s>"
                     "<s>[INST] How are you? [/INST]";
    expect("llama2", k_conv, true, "<s>", "</s>", l2);
    expect("llama2", k_conv, false, "<s>", "</s>", l2); /* no generation prompt in llama2 */
    expect("llama3", k_conv, true, "<|begin_of_text|>", "<|eot_id|>",
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expect("mistral", k_conv, true, "<s>", "</s>",
           "<s> [INST] You are helpful.\n\nHello! [/INST] Hi there.</s> [INST] How are you? [/INST]");
    expect("zephyr", k_conv, true, "<s>", "</s>",
           "<|system|>\nYou are helpful.</s>\n<|user|>\nHello!</s>\n<|assistant|>\nHi there.</s>\n"
           "<|user|>\nHow are you?</s>\n<|assistant|>\n");
    expect("gemma", k_conv, true, "<bos>", "<eos>",
           "<bos><start_of_turn>user\nYou are helpful.\n\nHello!<end_of_turn>\n"
           "<start_of_turn>model\nHi there.<end_of_turn>\n<start_of_turn>user\nHow are you?<end_of_turn>\n"
           "<start_of_turn>model\n");
    expect("phi3", k_conv, true, "<s>", "<|endoftext|>",
           "<|system|>\nYou are helpful.<|end|>\n<|user|>\nHello!<|end|>\n<|assistant|>\nHi there.<|end|>\n"
           "<|user|>\nHow are you?<|end|>\n<|assistant|>\n");
    expect("phi3", "[{\"role\": \"user\", \"content\": \"Hello!\"}]", false, "<s>", "<|endoftext|>",
           "<|user|>\nHello!<|end|>\n<|endoftext|>");
    const char *ds = DS_BOS "You are helpful.\n\nUser: Hello!\n\nAssistant: Hi there." DS_EOS
                            "User: How are you?\n\nAssistant:";
    expect("deepseek", k_conv, true, DS_BOS, DS_EOS, ds);
    expect("deepseek2", k_conv, true, DS_BOS, DS_EOS, ds);
    expect("deepseek3", k_conv, true, DS_BOS, DS_EOS,
           DS_BOS "You are helpful." DS_USER "Hello!" DS_ASSISTANT "Hi there." DS_EOS DS_USER
                  "How are you?" DS_ASSISTANT);
    expect("deepseek3",
           "[{\"role\": \"system\", \"content\": \"A\"}, {\"role\": \"user\", \"content\": \"u\"},"
           " {\"role\": \"system\", \"content\": \"B\"}]",
           false, DS_BOS, DS_EOS, DS_BOS "A\n\nB" DS_USER "u");
    /* trim where the family's template trims */
    const char *ws = "[{\"role\": \"user\", \"content\": \"  hi \\n\"}]";
    expect("llama3", ws, false, "B", "E", "B<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
    expect("gemma", ws, false, "B", "E", "B<start_of_turn>user\nhi<end_of_turn>\n");
    expect("chatml", ws, false, "B", "E", "<|im_start|>user\n  hi \n<|im_end|>\n");
    /* undefined tokens print nothing */
    expect("llama3", "[{\"role\": \"user\", \"content\": \"x\"}]", false, NULL, NULL,
           "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
    expect("chatml", "[]", true, NULL, NULL, "<|im_start|>assistant\n");
    expect("llama2", "[]", true, NULL, NULL, "");
}

static void test_alternation(void **state) {
    (void)state;
    const char *two_users = "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]";
    static const char *const strict[] = {"llama2", "mistral", "gemma"};
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL;
        sw_err err = {{0}};
        assert_int_equal(render_builtin(strict[i], two_users, true, "", "", &out, &err), SW_E_INVALID_ARG);
        assert_null(out);
        assert_string_equal(err.msg, "Conversation roles must alternate user/assistant/user/assistant/...");
    }
    expect("chatml", two_users, false, "", "", "<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n");
}

static void test_names(void **state) {
    (void)state;
    sw_chat_template *t = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_chat_template_builtin("vicuna", &t, &err), SW_E_NOT_FOUND);
    assert_null(t);
    assert_non_null(strstr(err.msg, "'vicuna'"));
    assert_non_null(strstr(err.msg, "--chat-template"));
    assert_non_null(strstr(err.msg, "deepseek3"));
    assert_int_equal(sw_chat_template_builtin("gemma", &t, NULL), SW_OK);
    assert_string_equal(sw_chat_template_label(t), "gemma");
    assert_string_equal(sw_chat_template_source(t), sw_chat_builtin_source("gemma"));
    sw_chat_template_free(t);
    sw_chat_template_free(NULL);
}

static void test_file(void **state) {
    (void)state;
    char path[] = "/tmp/sw_chat_tmpl_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *src = "{{ messages | length }}\n{% if %}";
    assert_int_equal(write(fd, src, strlen(src)), (ssize_t)strlen(src));
    close(fd);
    sw_chat_template *t = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_chat_template_file(path, &t, &err), SW_E_FORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "line 2"));
    FILE *f = fopen(path, "w");
    fputs("{{ messages | length }} {{ tools is none }} {{ documents is none }} {{ agp }}", f);
    fclose(f);
    assert_int_equal(sw_chat_template_file(path, &t, &err), SW_OK);
    char *out = NULL;
    sw_chat_input in = {.messages_json = "[1, 2]", .messages_json_len = 6, .kwargs_json = "{\"agp\": 1.0}",
                        .kwargs_json_len = 12};
    assert_int_equal(sw_chat_render_template(t, &in, &out, NULL, &err), SW_OK);
    assert_string_equal(out, "2 True True 1.0");
    free(out);
    sw_chat_template_free(t);
    unlink(path);
    assert_int_equal(sw_chat_template_file("/nonexistent/x.jinja", &t, &err), SW_E_IO);
    assert_non_null(strstr(err.msg, "--chat-template-file"));
}

static void test_variables(void **state) {
    (void)state;
    sw_chat_template *t = NULL;
    const char *src = "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ enable_thinking }}";
    assert_int_equal(sw_chat_template_parse(src, strlen(src), "t", &t, NULL), SW_OK);
    char *out = NULL;
    sw_err err = {{0}};
    /* kwargs override the tokens (transformers merges them over the special tokens) */
    sw_chat_input in = {.messages_json = "[]", .messages_json_len = 2, .bos_token = "<s>", .eos_token = "</s>",
                        .add_generation_prompt = true, .kwargs_json = "{\"eos_token\": \"E\", \"enable_thinking\": false}"};
    in.kwargs_json_len = strlen(in.kwargs_json);
    assert_int_equal(sw_chat_render_template(t, &in, &out, NULL, &err), SW_OK);
    assert_string_equal(out, "<s>|E|True|False");
    free(out);
    /* but not messages, tools, documents, add_generation_prompt */
    in.kwargs_json = "{\"messages\": []}";
    in.kwargs_json_len = strlen(in.kwargs_json);
    assert_int_equal(sw_chat_render_template(t, &in, &out, NULL, &err), SW_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "'messages'"));
    /* cJSON inputs */
    cJSON *kw = cJSON_Parse("{\"enable_thinking\": true}");
    cJSON *msgs = cJSON_Parse("[]");
    sw_chat_input cin = {.messages = msgs, .kwargs = kw};
    assert_int_equal(sw_chat_render_template(t, &cin, &out, NULL, &err), SW_OK);
    assert_string_equal(out, "||False|True");
    free(out);
    cJSON_Delete(kw);
    cJSON_Delete(msgs);
    /* render_vars: exactly the variables given */
    assert_int_equal(sw_chat_render_vars(t, "{\"bos_token\": 1}", 16, NULL, &out, NULL, &err), SW_OK);
    assert_string_equal(out, "1|||");
    free(out);
    sw_chat_template_free(t);
}

static void test_openai(void **state) {
    (void)state;
    const char *src = "{% for m in messages %}{{ m.content | tojson }}{% for c in m.tool_calls | default([]) %}"
                      " {{ c.function.arguments.city if c.function.arguments is mapping else 'str:' ~ c.function.arguments }}"
                      "{% endfor %};{% endfor %}";
    sw_chat_template *t = NULL;
    assert_int_equal(sw_chat_template_parse(src, strlen(src), "t", &t, NULL), SW_OK);
    const char *msgs = "[{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": null,"
                       " \"tool_calls\": [{\"type\": \"function\", \"function\": {\"name\": \"w\","
                       " \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}}, {\"type\": \"function\","
                       " \"function\": {\"name\": \"w\", \"arguments\": \"{oops\"}}]}]";
    char *out = NULL;
    sw_err err = {{0}};
    sw_chat_input in = {.messages_json = msgs, .messages_json_len = strlen(msgs)};
    assert_int_equal(sw_chat_render_template(t, &in, &out, NULL, &err), SW_OK);
    assert_string_equal(out, "\"hi\";null str:{\"city\": \"Paris\"} str:{oops;"); /* as given */
    free(out);
    in.openai = true;
    assert_int_equal(sw_chat_render_template(t, &in, &out, NULL, &err), SW_OK);
    assert_string_equal(out, "\"hi\";\"\" Paris str:{oops;"); /* adapted; invalid JSON stays a string */
    free(out);
    sw_chat_template_free(t);
}

static void test_uses_tools(void **state) {
    (void)state;
    sw_chat_template *t = NULL;
    assert_int_equal(sw_chat_template_builtin("chatml", &t, NULL), SW_OK);
    assert_false(sw_chat_template_uses_tools(t));
    sw_chat_template_free(t);
    const char *src = "{% if tools %}{{ tools | tojson }}{% endif %}{{ messages | length }}";
    assert_int_equal(sw_chat_template_parse(src, strlen(src), "t", &t, NULL), SW_OK);
    assert_true(sw_chat_template_uses_tools(t));
    sw_chat_template_free(t);
    /* a template that raises on the probe does not count as using tools */
    src = "{{ raise_exception('no') }}";
    assert_int_equal(sw_chat_template_parse(src, strlen(src), "t", &t, NULL), SW_OK);
    assert_false(sw_chat_template_uses_tools(t));
    sw_chat_template_free(t);
    /* one that renders only with tools (Hermes' tool_use loops over them) does */
    src = "{% for t in tools %}{{ t.function.name }}{% endfor %}";
    assert_int_equal(sw_chat_template_parse(src, strlen(src), "t", &t, NULL), SW_OK);
    assert_true(sw_chat_template_uses_tools(t));
    sw_chat_template_free(t);
}

static int open_vocab(const char *name, sw_gguf **g) {
    const char *dir = getenv("SW_SHARED_DIR");
    if (!dir) {
        print_message("skip: SW_SHARED_DIR is not set, cannot read %s\n", name);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/models/vocab/%s", dir, name);
    if (access(path, R_OK) != 0) {
        print_message("skip: %s is absent\n", path);
        return 0;
    }
    *g = sw_test_open_vocab(path);
    return 1;
}

static void test_gguf(void **state) {
    (void)state;
    sw_gguf *g = NULL;
    if (!open_vocab("ggml-vocab-phi-3.gguf", &g)) skip();
    sw_chat_template *t = NULL;
    sw_err err = {{0}};
    assert_int_equal(sw_chat_template_gguf(g, NULL, &t, &err), SW_OK);
    assert_string_equal(sw_chat_template_label(t), "model");
    char *out = NULL;
    sw_chat_input in = {.messages_json = "[{\"role\": \"user\", \"content\": \"Hi\"}]", .messages_json_len = 35,
                        .add_generation_prompt = true, .bos_token = "<s>", .eos_token = "<|endoftext|>"};
    assert_int_equal(sw_chat_render_template(t, &in, &out, NULL, &err), SW_OK);
    assert_non_null(strstr(out, "<|user|>"));
    assert_non_null(strstr(out, "<|assistant|>"));
    free(out);
    sw_chat_template_free(t);
    /* a named template the file does not have */
    assert_int_equal(sw_chat_template_gguf(g, "tool_use", &t, &err), SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "tokenizer.chat_template.tool_use"));
    sw_gguf_free(g);
    if (!open_vocab("ggml-vocab-gpt-2.gguf", &g)) skip();
    assert_int_equal(sw_chat_template_gguf(g, NULL, &t, &err), SW_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "--chat-template"));
    sw_gguf_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins), cmocka_unit_test(test_alternation),
        cmocka_unit_test(test_names),    cmocka_unit_test(test_file),
        cmocka_unit_test(test_variables), cmocka_unit_test(test_openai),
        cmocka_unit_test(test_gguf),      cmocka_unit_test(test_uses_tools),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
