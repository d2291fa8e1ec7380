// The record and map-value layouts as the C compiler sees them, reported to
// JavaScript so the TypeScript decoder's offsets can be tested against them.
#pragma once

#include <napi.h>

namespace premortem {
Napi::Object Layout(Napi::Env env);
}
