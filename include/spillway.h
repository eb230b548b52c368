/* spillway.h — the public C API of libspillway. Tools include only this header.
 * It gathers the public module headers (each module keeps its own header). */
#ifndef SPILLWAY_H
#define SPILLWAY_H

#define SW_VERSION "0.1.0"

#include "sw_base.h"
#include "quant.h"
#include "gguf.h"
#include "model_config.h"
#include "tokenizer.h"
#include "chat.h"
#include "backend.h"
#include "cpu_backend.h"
#include "model.h"
#include "sampler.h"
#include "grammar.h"
#include "json_schema.h"
#include "gbnf.h"
#include "engine.h"
#include "hf_download.h"
#include "devices.h"

#endif
