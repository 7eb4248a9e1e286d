// The one async-worker template: runs blocking native work on the libuv thread pool,
// keeps the JS objects it touches alive until it finishes, and settles a promise:
// resolved with what `done` builds on the main thread, or rejected with an Error whose
// message (and `code`) come from the exception the work threw. Nothing thrown in the
// work escapes into Node.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "relu_serve.h"

namespace rs_napi {

// An engine failure carried from a worker thread to the promise's rejection.
struct EngineError : std::exception {
  rs_status status;
  std::string message;
  EngineError(rs_status s, std::string m) : status(s), message(std::move(m)) {}
  const char *what() const noexcept override { return message.c_str(); }
};

const char *status_code(rs_status s);

// Throws EngineError when a C ABI call failed.
inline void check(rs_status s, const rs_error &err) {
  if (s != RS_OK) throw EngineError(s, err.message);
}

// Builds a JS Error with `code` set ("RS_ERR_FORMAT", ...).
Napi::Error make_error(Napi::Env env, rs_status status, const std::string &message);

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using Done = std::function<Napi::Value(Napi::Env, Result &)>;
  using Finally = std::function<void()>;

  // Queues the work and returns its promise. `keep` are objects held alive until the
  // promise settles; `finally` runs on the main thread before it settles (e.g. to mark
  // a context idle again).
  static Napi::Promise Start(Napi::Env env, Work work, Done done, std::vector<Napi::Object> keep = {},
                             Finally finally = nullptr) {
    auto *w = new PromiseWorker(env, std::move(work), std::move(done), std::move(finally));
    for (Napi::Object &o : keep) w->keep_.push_back(Napi::Persistent(o));
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      result_ = work_();
    } catch (const EngineError &e) {
      status_ = e.status;
      SetError(e.message);
    } catch (const std::bad_alloc &) {
      status_ = RS_ERR_NO_MEMORY;
      SetError("out of memory");
    } catch (const std::exception &e) {
      status_ = RS_ERR_INTERNAL;
      SetError(e.what());
    } catch (...) {
      status_ = RS_ERR_INTERNAL;
      SetError("unknown native error");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (finally_) finally_();
    try {
      deferred_.Resolve(done_(env, result_));
    } catch (const Napi::Error &e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception &e) {
      deferred_.Reject(make_error(env, RS_ERR_INTERNAL, e.what()).Value());
    }
  }

  void OnError(const Napi::Error &e) override {
    if (finally_) finally_();
    deferred_.Reject(make_error(Env(), status_, e.Message()).Value());
  }

 private:
  PromiseWorker(Napi::Env env, Work work, Done done, Finally finally)
      : Napi::AsyncWorker(env, "relu-serve"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)),
        finally_(std::move(finally)) {}

  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Finally finally_;
  Result result_{};
  rs_status status_ = RS_ERR_INTERNAL;
  std::vector<Napi::ObjectReference> keep_;
};

}  // namespace rs_napi
