// cxx.cc - C++ under the shim: pthread_exit and cancellation unwinding
// through frames with destructors, exceptions inside threads, std::thread,
// std::async, std::condition_variable.
//
//   cxx core     the shim's contract
//   cxx extra    thread_local objects (beyond the stated contract)
//
// One line per check, "name: ok" or "name: FAIL ..."; exit 1 on a failure.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cxxabi.h>
#include <future>
#include <mutex>
#include <pthread.h>
#include <semaphore.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

int failures;

void check(const char *name, bool ok, const std::string &detail)
{
	if (ok) {
		std::printf("%s: ok\n", name);
	} else {
		failures++;
		std::printf("%s: FAIL %s\n", name, detail.c_str());
	}
	std::fflush(stdout);
}

std::string vec(const std::vector<int> &v)
{
	std::string s;
	for (size_t i = 0; i < v.size(); i++)
		s += (i ? "," : "") + std::to_string(v[i]);
	return "[" + s + "]";
}

struct Log {
	std::vector<int> order;
	int after_exit = 0;
	int caught_forced = 0;
	sem_t started, hold;
};

struct Guard {
	Log *log;
	int depth;
	~Guard() { log->order.push_back(depth); }
};

// through a pointer: gcc takes a recursion that ends only in a noreturn
// call for an infinite one
void (*volatile exit_fn)(void *) = pthread_exit;

int deep_exit(Log *log, int depth)
{
	Guard g{log, depth};
	if (depth > 1000)
		return 0;
	if (depth == 30)
		exit_fn(reinterpret_cast<void *>(7));
	int r = deep_exit(log, depth + 1) + 1;
	log->after_exit = 1;
	return r;
}

} // namespace

extern "C" void *cxx_exit_body(void *arg);
extern "C" void *cxx_exit_body(void *arg)
{
	Log *log = static_cast<Log *>(arg);
	deep_exit(log, 0);
	log->after_exit = 1;
	return nullptr;
}

extern "C" void *cxx_exit_rethrow_body(void *arg);
extern "C" void *cxx_exit_rethrow_body(void *arg)
{
	Log *log = static_cast<Log *>(arg);
	try {
		deep_exit(log, 0);
	} catch (abi::__forced_unwind &) {
		log->caught_forced++;
		throw;
	}
	log->after_exit = 1;
	return nullptr;
}

extern "C" void *cxx_exit_catchall_body(void *arg);
extern "C" void *cxx_exit_catchall_body(void *arg)
{
	Log *log = static_cast<Log *>(arg);
	try {
		deep_exit(log, 0);
	} catch (...) {
		log->caught_forced++;
		throw;
	}
	log->after_exit = 1;
	return nullptr;
}

extern "C" void *cxx_cancel_body(void *arg);
extern "C" void *cxx_cancel_body(void *arg)
{
	Log *log = static_cast<Log *>(arg);
	Guard a{log, 1};
	{
		Guard b{log, 2};
		sem_post(&log->started);
		while (sem_wait(&log->hold) != 0)  // a cancellation point, never posted
			;
		log->after_exit = 1;
	}
	return nullptr;
}

namespace {

int thrower(int depth)
{
	volatile char pad[32];
	pad[0] = static_cast<char>(depth);
	if (depth == 20)
		throw std::runtime_error("deep " + std::to_string(depth));
	return thrower(depth + 1) + pad[0];
}

} // namespace

extern "C" void *cxx_throw_body(void *arg);
extern "C" void *cxx_throw_body(void *arg)
{
	int n = 0;
	for (int i = 0; i < 500; i++) {
		try {
			thrower(0);
		} catch (const std::runtime_error &e) {
			if (std::strcmp(e.what(), "deep 20") == 0)
				n++;
		}
	}
	return reinterpret_cast<void *>(static_cast<intptr_t>(n));
}

static void check_exit()
{
	static const char *const names[] = { "cxx-exit-deep-destructors",
					     "cxx-exit-forced-unwind-rethrown",
					     "cxx-exit-catch-all-rethrown" };
	void *(*bodies[])(void *) = { cxx_exit_body, cxx_exit_rethrow_body,
				      cxx_exit_catchall_body };
	std::vector<int> want;
	for (int d = 30; d >= 0; d--)
		want.push_back(d);
	for (int k = 0; k < 3; k++) {
		Log log;
		pthread_t t;
		void *v = nullptr;
		pthread_create(&t, nullptr, bodies[k], &log);
		pthread_join(t, &v);
		bool ok = v == reinterpret_cast<void *>(7) && log.order == want && !log.after_exit &&
			  log.caught_forced == (k ? 1 : 0);
		check(names[k], ok,
		      "expected value 0x7, destructors 30..0, catch " + std::to_string(k ? 1 : 0) +
			      "; got value " + std::to_string(reinterpret_cast<uintptr_t>(v)) +
			      ", destructors " + vec(log.order) + ", after-exit " +
			      std::to_string(log.after_exit) + ", caught " +
			      std::to_string(log.caught_forced));
	}
}

static void check_cancel()
{
	Log log;
	pthread_t t;
	void *v = nullptr;
	sem_init(&log.started, 0, 0);
	sem_init(&log.hold, 0, 0);
	pthread_create(&t, nullptr, cxx_cancel_body, &log);
	while (sem_wait(&log.started) != 0)
		;
	pthread_cancel(t);
	pthread_join(t, &v);
	bool ok = v == PTHREAD_CANCELED && log.order == std::vector<int>{ 2, 1 } && !log.after_exit;
	check("cxx-cancel-destructors", ok,
	      "expected PTHREAD_CANCELED and destructors [2,1]; got canceled " +
		      std::to_string(v == PTHREAD_CANCELED) + ", destructors " + vec(log.order));
	sem_destroy(&log.started);
	sem_destroy(&log.hold);
}

static void check_exceptions()
{
	pthread_t t[8];
	long total = 0;
	for (auto &x : t)
		pthread_create(&x, nullptr, cxx_throw_body, nullptr);
	for (auto &x : t) {
		void *v;
		pthread_join(x, &v);
		total += reinterpret_cast<intptr_t>(v);
	}
	check("cxx-exceptions", total == 8 * 500,
	      "8 threads x 500 exceptions thrown 20 frames deep: expected 4000 caught, got " +
		      std::to_string(total));
}

static void check_std_thread()
{
	std::vector<std::thread> ts;
	std::vector<long> out(16, 0);
	for (int i = 0; i < 16; i++)
		ts.emplace_back([i, &out] {
			long s = 0;
			for (int k = 0; k <= 1000 * (i + 1); k++)
				s += k;
			out[i] = s;
		});
	for (auto &x : ts)
		x.join();
	bool ok = true;
	for (int i = 0; i < 16; i++) {
		long n = 1000L * (i + 1);
		ok = ok && out[i] == n * (n + 1) / 2;
	}
	check("cxx-std-thread", ok, "16 std::threads computed wrong sums");

	std::vector<std::future<long>> fs;
	for (int i = 0; i < 16; i++)
		fs.push_back(std::async(std::launch::async, [i] { return static_cast<long>(i) * i; }));
	long sum = 0;
	for (auto &f : fs)
		sum += f.get();
	check("cxx-async", sum == 1240, "expected 1240, got " + std::to_string(sum));

	std::mutex m;
	std::condition_variable cv;
	int turn = 0, rounds = 20000;
	auto player = [&](int me) {
		for (int r = 0; r < rounds; r++) {
			std::unique_lock<std::mutex> lk(m);
			cv.wait(lk, [&] { return turn % 2 == me; });
			turn++;
			cv.notify_all();
		}
	};
	std::thread a(player, 0), b(player, 1);
	a.join();
	b.join();
	check("cxx-condvar-pingpong", turn == 2 * rounds,
	      "expected " + std::to_string(2 * rounds) + " turns, got " + std::to_string(turn));
}

// extra: thread_local objects are constructed per thread and destroyed at
// the thread's end (before its join returns).
namespace {
std::atomic<int> tl_constructed{ 0 }, tl_destroyed{ 0 }, tl_stale{ 0 };
struct PerThread {
	int value = 5;
	PerThread() { tl_constructed++; }
	~PerThread() { tl_destroyed++; }
};
thread_local PerThread per_thread;
} // namespace

static void check_thread_local()
{
	for (int i = 0; i < 10; i++) {
		std::thread t([] {
			if (per_thread.value != 5)
				tl_stale++;
			per_thread.value = 9;
		});
		t.join();
	}
	check("cxx-extra-thread-local", tl_constructed == 10 && tl_destroyed == 10 && tl_stale == 0,
	      "10 std::threads one after another, each touching a thread_local object: expected "
	      "10 constructed, 10 destroyed by join, none stale; got " +
		      std::to_string(tl_constructed.load()) + ", " +
		      std::to_string(tl_destroyed.load()) + ", " + std::to_string(tl_stale.load()));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		std::fprintf(stderr, "usage: cxx core|extra\n");
		return 2;
	}
	for (int a = 1; a < argc; a++) {
		std::string g = argv[a];
		if (g == "core") {
			check_exit();
			check_cancel();
			check_exceptions();
			check_std_thread();
		} else if (g == "extra") {
			check_thread_local();
		} else {
			std::fprintf(stderr, "cxx: no group %s\n", argv[a]);
			return 2;
		}
	}
	return failures ? 1 : 0;
}
