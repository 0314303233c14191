// Work split between the calling thread and a few workers, with results
// taken back in order: the import parses profiles on both cores, and merges
// sorted records on one while the other writes them into LMDB.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace segsync {

// The calling thread fills blocks in turn (`fill`, false when there is no
// more input), `workers` threads process them (`work(block, worker index)`,
// concurrently, or in order when there is one worker), and the calling thread takes
// each processed block back in the order it was filled (`take`). `depth`
// blocks are reused over and over, which bounds memory. An exception from
// `work` is rethrown by the calling thread when it reaches that block; one
// from `fill` or `take` stops the workers (after their current block) and
// propagates.
template <typename Block, typename Fill, typename Work, typename Take>
void run_ordered(std::size_t workers, std::size_t depth, Fill fill, Work work, Take take) {
    enum class State { empty, filled, working, done };
    struct Slot {
        Block block;
        State state = State::empty;
        std::uint64_t sequence = 0;
        std::exception_ptr error;
    };
    std::vector<Slot> slots(depth);
    std::mutex mutex;
    std::condition_variable work_ready, work_done;
    bool stopping = false;

    auto next_filled = [&]() -> Slot* {
        Slot* first = nullptr;
        for (auto& slot : slots)
            if (slot.state == State::filled && (!first || slot.sequence < first->sequence)) first = &slot;
        return first;
    };
    auto worker = [&](std::size_t index) {
        std::unique_lock<std::mutex> lock(mutex);
        for (;;) {
            Slot* slot = nullptr;
            work_ready.wait(lock, [&] { return stopping || (slot = next_filled()) != nullptr; });
            if (stopping) return;
            slot->state = State::working;
            lock.unlock();
            try {
                work(slot->block, index);
            } catch (...) {
                slot->error = std::current_exception();
            }
            lock.lock();
            slot->state = State::done;
            work_done.notify_all();
        }
    };

    std::vector<std::thread> threads;
    struct Joiner {
        std::vector<std::thread>& threads;
        std::mutex& mutex;
        std::condition_variable& work_ready;
        bool& stopping;
        ~Joiner() {
            {
                std::lock_guard<std::mutex> lock(mutex);
                stopping = true;
            }
            work_ready.notify_all();
            for (auto& thread : threads) thread.join();
        }
    } joiner{threads, mutex, work_ready, stopping};
    for (std::size_t i = 0; i < workers; ++i) threads.emplace_back(worker, i);

    std::uint64_t filled = 0, taken = 0;
    bool more = true;
    for (;;) {
        // Only this thread moves a slot out of `empty` or `done`.
        for (auto& slot : slots) {
            if (!more) break;
            {
                std::lock_guard<std::mutex> lock(mutex);
                if (slot.state != State::empty) continue;
            }
            more = fill(slot.block);
            if (!more) break;
            std::lock_guard<std::mutex> lock(mutex);
            slot.state = State::filled;
            slot.sequence = filled++;
            work_ready.notify_one();
        }
        if (taken == filled) return;  // and nothing more to fill
        Slot* next = nullptr;
        {
            std::unique_lock<std::mutex> lock(mutex);
            work_done.wait(lock, [&] {
                for (auto& slot : slots)
                    if (slot.state == State::done && slot.sequence == taken) next = &slot;
                return next != nullptr;
            });
        }
        if (next->error) std::rethrow_exception(next->error);
        take(next->block);
        std::lock_guard<std::mutex> lock(mutex);
        next->state = State::empty;
        ++taken;
    }
}

}  // namespace segsync
