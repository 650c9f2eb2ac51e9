#include <cerrno>

#include <pagewire/runtime/compound.h>

namespace pagewire::runtime {

compound::compound(context& ctx, compound_options options) : ctx_(ctx), options_(options) {}

void compound::add(operation& child, std::size_t expected_bytes) {
  link& l = links_.emplace_back();
  l.parent = this;
  l.child = &child;
  l.expected = expected_bytes;
  child.push_action(l);
  ++pending_;
  done_ = false;
}

void compound::start() {
  for (link& l : links_) {
    if (l.started) continue;
    l.started = true;
    ctx_.start(*l.child);
  }
}

void compound::cancel() {
  cancelled_ = true;
  for (link& l : links_) {
    if (l.child->in_flight()) ctx_.cancel(*l.child);
  }
}

void compound::reset() {
  links_.clear();
  pending_ = 0;
  bytes_ = 0;
  retries_ = 0;
  error_.clear();
  cancelled_ = false;
  done_ = false;
}

action_result compound::link::on_complete(operation& op, int& result, bool) {
  compound& p = *parent;
  if (!p.cancelled_ && retries < p.options_.max_retries) {
    const bool transient = result == -EAGAIN || result == -EINTR || result == -ENOBUFS;
    const bool short_transfer = expected > 0 && result > 0 &&
                                static_cast<std::size_t>(result) < expected &&
                                op.consume(static_cast<std::size_t>(result));
    if (transient || short_transfer) {
      if (short_transfer) {
        transferred += static_cast<std::size_t>(result);
        expected -= static_cast<std::size_t>(result);
      }
      ++retries;
      ++p.retries_;
      p.ctx_.start(op);  // same child, same stack: this action sees the next CQE
      return action_result::keep;
    }
  }
  if (result >= 0) {
    transferred += static_cast<std::size_t>(result);
    result = static_cast<int>(transferred);  // layers above see the whole transfer
  }
  p.child_done(*this, result);
  return action_result::done;
}

void compound::child_done(link& l, int result) {
  (void)l;
  if (result < 0) {
    if (!error_) error_ = std::error_code(-result, std::system_category());
  } else {
    bytes_ += static_cast<std::size_t>(result);
  }
  if (--pending_ == 0) {
    completion_.self = this;
    completion_.fn = &compound::run_completion;
    ctx_.defer(completion_);
  }
}

void compound::run_completion(task_node* t, bool invoke) {
  if (!invoke) return;
  compound* self = static_cast<completion_node*>(t)->self;
  self->done_ = true;
  self->on_complete(self->error_, self->bytes_);
}
}  // namespace pagewire::runtime
