// The record and map-value layouts as the C compiler sees them, reported to
// JavaScript so the TypeScript decoder's offsets can be tested against them.
// Each probe registers its structs from its own native/layout_<probe>.cc.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace premortem {

Napi::Object Layout(Napi::Env env);

// Builds one struct's entry: {size, type?, offsets: {field: byte offset}}.
class StructLayout {
 public:
  StructLayout(Napi::Env env, size_t size, uint32_t type = 0)
      : obj_(Napi::Object::New(env)), fields_(Napi::Object::New(env)) {
    obj_.Set("size", Napi::Number::New(env, size));
    if (type) obj_.Set("type", Napi::Number::New(env, type));
    obj_.Set("offsets", fields_);
  }
  StructLayout& Field(const char* name, size_t offset) {
    fields_.Set(name, Napi::Number::New(fields_.Env(), offset));
    return *this;
  }
  Napi::Object Done() { return obj_; }

 private:
  Napi::Object obj_;
  Napi::Object fields_;
};

#define PM_FIELD(s, f) Field(#f, offsetof(s, f))

// Adds a probe's structs to layout().structs: one static instance per file.
using LayoutFiller = void (*)(Napi::Env env, Napi::Object structs);
struct LayoutRegistrar {
  explicit LayoutRegistrar(LayoutFiller fill);
};

}  // namespace premortem
