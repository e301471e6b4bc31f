// Linked into the tests only in a ThreadSanitizer build (KASSA_SANITIZE=thread).
//
// Debian's libcaf_core is not built with TSan: the atomics of its mailboxes, its scheduler's
// queues and its reference counts are invisible to it, so every message would look like a
// data race between its sender and its receiver. This file restores those edges. It defines
// (and so interposes) the libcaf_core functions where an actor or a message changes threads,
// tells TSan about the hand-over, and calls the library's own definition (dlsym RTLD_NEXT):
//   - launch and enqueue          -> release on the receiving actor;
//   - resume and consume          -> acquire on the actor at the start, release at the end
//                                    (its next message may be handled on another worker);
//   - a message destroyed          -> release on the actor this thread is resuming (the
//                                    message's handler is done; the mailbox may be handed on);
//   - make_behavior                -> release on the actor (its initial behavior is built);
//   - a reference count released  -> each releaser's accesses happen before the delete;
//   - cleanup (the actor exits)    -> acquire on the actor: messages still in its mailbox,
//                                    sent while it ran its last message, are destroyed here.
// Nothing here silences a report: every access of kassa's code is still checked.
//
// Limits: a call inside libcaf_core to libcaf_core is bound within the library, so this
// reaches only actors whose class is instantiated in kassa's code (caf::stateful_actor<S>,
// every kassa actor with state); a plain event_based_actor or a scoped_actor is compiled into
// the library and keeps the blind spot (tests ask through tests/ask.hpp instead of a
// scoped_actor). And an actor acquires everything sent to it before, not only the message at
// hand: a race between two of its senders on memory they share outside messages may be missed.
// A message the library builds itself (a response, a system message) is destroyed without the
// hook, so an actor whose last message was a response may still be reported, rarely, when its
// next message is handled on another worker.
#include <caf/all.hpp>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>

#if CAF_VERSION != 1706
#error "tests/tsan/caf_sync.cpp interposes CAF 0.17.6; check its functions against this version"
#endif

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

// The library's definition of `mangled`; a missing symbol means another CAF version: stop.
template <class F>
F real(const char* mangled) {
  auto f = reinterpret_cast<F>(dlsym(RTLD_NEXT, mangled));
  if (f == nullptr) {
    std::fprintf(stderr, "tests/tsan/caf_sync.cpp: %s is not in libcaf_core\n", mangled);
    std::abort();
  }
  return f;
}

// A hand-over through an atomic reference count: every thread that drops a reference
// publishes its accesses and takes those of the threads that dropped theirs before it, so
// the one that deletes the object has seen them all.
void hand_over(const void* object) {
  __tsan_release(const_cast<void*>(object));
  __tsan_acquire(const_cast<void*>(object));
}

// The actor this thread is resuming, if any. Inside resume, the library blocks the actor's
// mailbox when it runs dry; from then on a sender may schedule the actor on another worker,
// which acquires it before this thread's resume returns and releases it. So the writes of the
// actor's last message are published earlier: when that message is destroyed, right after its
// handler and before the mailbox is blocked.
thread_local caf::scheduled_actor* running = nullptr;

} // namespace

// caf::mailbox_element's base destructor, run for every message a kassa source built
// (mailbox_element_vals<...> is instantiated there and calls this through the PLT). Declared
// by its symbol: a C++ definition of the destructor would destroy the members a second time.
extern "C" void kassa_tsan_mailbox_element_d2(caf::mailbox_element* self) __asm__("_ZN3caf15mailbox_elementD2Ev");
extern "C" void kassa_tsan_mailbox_element_d2(caf::mailbox_element* self) {
  using fn = void (*)(caf::mailbox_element*);
  static const fn f = real<fn>("_ZN3caf15mailbox_elementD2Ev");
  if (running != nullptr) __tsan_release(running);
  f(self);
}

namespace caf {

void scheduled_actor::enqueue(mailbox_element_ptr ptr, execution_unit* eu) {
  using fn = void (*)(scheduled_actor*, mailbox_element_ptr, execution_unit*);
  static const fn f = real<fn>("_ZN3caf15scheduled_actor7enqueueESt10unique_ptrINS_15mailbox_elementENS_6detail8disposerEEPNS_14execution_unitE");
  __tsan_release(this);
  f(this, std::move(ptr), eu);
}

void scheduled_actor::launch(execution_unit* eu, bool lazy, bool hide) {
  using fn = void (*)(scheduled_actor*, execution_unit*, bool, bool);
  static const fn f = real<fn>("_ZN3caf15scheduled_actor6launchEPNS_14execution_unitEbb");
  __tsan_release(this); // what spawn wrote (the actor and its arguments) precedes its first run
  f(this, eu, lazy, hide);
}

resumable::resume_result scheduled_actor::resume(execution_unit* eu, size_t max_throughput) {
  using fn = resumable::resume_result (*)(scheduled_actor*, execution_unit*, size_t);
  static const fn f = real<fn>("_ZN3caf15scheduled_actor6resumeEPNS_14execution_unitEm");
  scheduled_actor* const outer = running;
  running = this;
  __tsan_acquire(this);
  auto result = f(this, eu, max_throughput);
  __tsan_release(this);
  running = outer;
  return result;
}

// The actor's initial behavior (a function-based actor's state and closures) is built here,
// inside resume; publish it before resume blocks the mailbox (see the handler hook below).
behavior event_based_actor::make_behavior() {
  using fn = behavior (*)(event_based_actor*);
  static const fn f = real<fn>("_ZN3caf17event_based_actor13make_behaviorEv");
  behavior result = f(this);
  __tsan_release(static_cast<scheduled_actor*>(this));
  return result;
}

invoke_message_result scheduled_actor::consume(mailbox_element& x) {
  using fn = invoke_message_result (*)(scheduled_actor*, mailbox_element&);
  static const fn f = real<fn>("_ZN3caf15scheduled_actor7consumeERNS_15mailbox_elementE");
  __tsan_acquire(this);
  auto result = f(this, x);
  __tsan_release(this); // the next message may be handled on another worker thread
  return result;
}

bool scheduled_actor::cleanup(error&& fail_state, execution_unit* host) {
  using fn = bool (*)(scheduled_actor*, error&&, execution_unit*);
  static const fn f = real<fn>("_ZN3caf15scheduled_actor7cleanupEONS_5errorEPNS_14execution_unitE");
  __tsan_acquire(this); // senders released on this actor before their enqueue
  return f(this, std::move(fail_state), host);
}

void ref_counted::deref() const noexcept {
  using fn = void (*)(const ref_counted*);
  static const fn f = real<fn>("_ZNK3caf11ref_counted5derefEv");
  hand_over(this);
  f(this);
}

void intrusive_ptr_release(actor_control_block* x) {
  using fn = void (*)(actor_control_block*);
  static const fn f = real<fn>("_ZN3caf21intrusive_ptr_releaseEPNS_19actor_control_blockE");
  hand_over(x);
  f(x);
}

void intrusive_ptr_release_weak(actor_control_block* x) {
  using fn = void (*)(actor_control_block*);
  static const fn f = real<fn>("_ZN3caf26intrusive_ptr_release_weakEPNS_19actor_control_blockE");
  hand_over(x);
  f(x);
}

} // namespace caf
