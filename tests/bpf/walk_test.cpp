// The kernel relay's walker (bpf/pg_walk.h), fed segment by segment as relay.bpf.c feeds it:
// what it counts on each side, headers cut anywhere, where it stops and why, and the hand-back
// to user space (daemon/relay_kernel.cpp's resume rule) on random streams: every message is
// counted once, by the walker or by the scanner that takes over.
#include <cstring>

#define PGNAP_WALK_LOAD(src, off, dst, len) \
  (std::memcpy((dst), static_cast<const unsigned char*>(src) + (off), (len)), 0)
#include "bpf/pg_walk.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/bpf/walk_harness.h"

namespace pgnap::bpftest {
namespace {

using namespace std::string_literals;

std::string msg(char type, const std::string& body) {
  std::string out(1, type);
  protocol::append_u32(out, static_cast<std::uint32_t>(4 + body.size()));
  return out + body;
}

std::string header(char type, std::uint32_t length) {
  std::string out(1, type);
  protocol::append_u32(out, length);
  return out;
}

Bytes bytes(const std::string& s) { return Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); }

// The stream as one segment per entry of `segments`, all forwarded unless one stops.
StreamWalk walk(const pgnap_walk_cfg& cfg, const std::vector<std::string>& segments) {
  std::string stream;
  std::vector<std::size_t> sizes;
  for (const auto& s : segments) {
    stream += s;
    sizes.push_back(s.size());
  }
  return walk_stream(cfg, bytes(stream), sizes, sizes.size());
}

const pgnap_walk_cfg kClient = make_cfg(PGNAP_SIDE_CLIENT, 1 << 20);
const pgnap_walk_cfg kServer = make_cfg(PGNAP_SIDE_SERVER, 0x7fffffff);

const std::string kRowDescription = msg('T', "\0\x01n\0"s + "\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0"s);
const std::string kDataRow = msg('D',
                                 "\0\x01\0\0\0\x01"
                                 "1"s);
const std::string kSelect1 = msg('C', "SELECT 1\0"s);
const std::string kError = msg('E', "SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0\0"s);
std::string ready(char status) { return msg('Z', std::string(1, status)); }

// A server's answer to a simple query, as PostgreSQL sends it.
const std::string kResponse = kRowDescription + kDataRow + kDataRow + kSelect1 + ready('I');

TEST(Walk, SimpleQueryCycle) {
  const StreamWalk client = walk(kClient, {msg('Q', "SELECT 1;\0"s)});
  EXPECT_EQ(client.result, PGNAP_WALK_MORE);
  EXPECT_EQ(client.w.sync_points, 1u);
  EXPECT_EQ(client.w.unsynced, 0);
  EXPECT_EQ(client.w.header_have, 0);

  const StreamWalk server = walk(kServer, {kRowDescription + kDataRow + kSelect1 + ready('I')});
  EXPECT_EQ(server.result, PGNAP_WALK_MORE);
  EXPECT_EQ(server.w.ready, 1u);
  EXPECT_EQ(server.w.status, 'I');
  EXPECT_EQ(server.w.header_have, 0);
  EXPECT_EQ(server.resume, kRowDescription.size() + kDataRow.size() + kSelect1.size() + 6);
}

TEST(Walk, ExtendedProtocol) {
  const std::string before_sync = msg('P', "\0SELECT $1\0\0\0"s) +
                                  msg('B',
                                      "\0\0\0\0\0\x01\0\0\0\x01"
                                      "7\0\0"s) +
                                  msg('D', "P\0"s) + msg('E', "\0\0\0\0\0"s);
  StreamWalk client = walk(kClient, {before_sync});
  EXPECT_EQ(client.w.sync_points, 0u);
  EXPECT_EQ(client.w.unsynced, 1);
  client = walk(kClient, {before_sync, msg('S', "")});
  EXPECT_EQ(client.result, PGNAP_WALK_MORE);
  EXPECT_EQ(client.w.sync_points, 1u);
  EXPECT_EQ(client.w.unsynced, 0);
  // Close and Flush wait for a Sync too; a client's 'C' is Close, never a command tag.
  client = walk(kClient, {msg('S', ""), msg('C', "SLISTEN\0"s), msg('H', "")});
  EXPECT_EQ(client.result, PGNAP_WALK_MORE);
  EXPECT_EQ(client.w.sync_points, 1u);
  EXPECT_EQ(client.w.unsynced, 1);
  client = walk(kClient, {msg('F', "\0\0\0\x01\0\0\0\0\0\0"s)});
  EXPECT_EQ(client.w.sync_points, 1u);

  const StreamWalk server = walk(kServer,
                                 {msg('1', "") + msg('2', "") + kRowDescription + kDataRow + kSelect1 + ready('I')});
  EXPECT_EQ(server.result, PGNAP_WALK_MORE);
  EXPECT_EQ(server.w.ready, 1u);
  EXPECT_EQ(server.w.status, 'I');
  EXPECT_EQ(server.w.header_have, 0);
}

TEST(Walk, Transaction) {
  const std::string begin = msg('C', "BEGIN\0"s) + ready('T');
  StreamWalk server = walk(kServer, {begin});
  EXPECT_EQ(server.w.ready, 1u);
  EXPECT_EQ(server.w.status, 'T');
  server = walk(kServer, {begin, kResponse.substr(0, kResponse.size() - 6) + ready('T'), kError + ready('E')});
  EXPECT_EQ(server.w.ready, 3u);
  EXPECT_EQ(server.w.status, 'E');
  server = walk(kServer, {begin, msg('C', "COMMIT\0"s) + ready('I')});
  EXPECT_EQ(server.result, PGNAP_WALK_MORE);
  EXPECT_EQ(server.w.ready, 2u);
  EXPECT_EQ(server.w.status, 'I');

  const StreamWalk client = walk(kClient, {msg('Q', "BEGIN\0"s), msg('Q', "SELECT 1\0"s) + msg('Q', "COMMIT\0"s)});
  EXPECT_EQ(client.w.sync_points, 3u);
}

// Every cut of a server response (and of a client's pipeline) into two segments: the walker's
// state after the first is where the scanner would be, and after both it is as after one.
TEST(Walk, HeadersSplitAtEveryPosition) {
  struct Case {
    pgnap_walk_cfg cfg;
    std::string stream;
  };
  const Case cases[] = {
      {kServer, msg('1', "") + msg('2', "") + kResponse + msg('C', "LISTENER\0"s) + ready('T')},
      {kClient, msg('P', "\0SELECT 1\0\0\0"s) + msg('B', "\0\0\0\0\0\0\0\0"s) + msg('E', "\0\0\0\0\0"s) + msg('S', "") +
                    msg('Q', "SELECT 2\0"s)},
  };
  for (const Case& c : cases) {
    const StreamWalk whole = walk(c.cfg, {c.stream});
    ASSERT_EQ(whole.result, PGNAP_WALK_MORE);
    ASSERT_EQ(whole.w.header_have, 0);
    for (std::size_t cut = 1; cut < c.stream.size(); ++cut) {
      SCOPED_TRACE("cut at " + std::to_string(cut));
      const std::vector<std::size_t> sizes{cut, c.stream.size() - cut};
      const StreamWalk first = walk_stream(c.cfg, bytes(c.stream), sizes, 1);
      ASSERT_EQ(first.result, PGNAP_WALK_MORE);
      ASSERT_EQ(first.resume, cut);
      EXPECT_EQ(check_walked(c.cfg, bytes(c.stream), first), "");
      EXPECT_EQ(check_resume(c.cfg, bytes(c.stream), first, 0x7fffffff, {}), "");
      const StreamWalk both = walk_stream(c.cfg, bytes(c.stream), sizes, 2);
      EXPECT_EQ(both.result, PGNAP_WALK_MORE);
      EXPECT_EQ(both.resume, c.stream.size());
      EXPECT_EQ(counts_of(both.w, c.cfg.side), counts_of(whole.w, c.cfg.side));
      EXPECT_EQ(both.w.header_have, 0);
    }
  }
}

TEST(Walk, StopsOnATypeInTheStopMask) {
  const pgnap_walk_cfg stop_errors = make_cfg(PGNAP_SIDE_SERVER, 0x7fffffff, "EAK");
  const std::string first = kRowDescription + kDataRow;
  // The segment with the ErrorResponse goes to user space; the state is the one before it.
  StreamWalk server = walk(stop_errors, {first, kSelect1 + kError + ready('E')});
  EXPECT_EQ(server.result, PGNAP_WALK_STOP);
  EXPECT_EQ(server.resume, first.size());
  EXPECT_EQ(server.w.header_have, 0);
  EXPECT_EQ(server.w.ready, 0u);
  // Its header cut across segments: the second one stops, the first was forwarded.
  server = walk(stop_errors, {kSelect1 + kError.substr(0, 3), kError.substr(3) + ready('E')});
  EXPECT_EQ(server.result, PGNAP_WALK_STOP);
  EXPECT_EQ(server.resume, kSelect1.size() + 3);
  EXPECT_EQ(server.w.header_have, 3);
  // Not in the mask: counted like any other message.
  server = walk(kServer, {first, kSelect1 + kError + ready('E')});
  EXPECT_EQ(server.result, PGNAP_WALK_MORE);
  EXPECT_EQ(server.w.ready, 1u);
  EXPECT_EQ(server.w.status, 'E');
  // The client's Terminate, as the relay arms it.
  const StreamWalk client = walk(make_cfg(PGNAP_SIDE_CLIENT, 1 << 20, "X"), {msg('Q', "SELECT 1\0"s), msg('X', "")});
  EXPECT_EQ(client.result, PGNAP_WALK_STOP);
  EXPECT_EQ(client.w.sync_points, 1u);
}

TEST(Walk, StopsOnListenAndDiscardAllTags) {
  for (const std::string& tag : {"LISTEN\0"s, "DISCARD ALL\0"s}) {
    SCOPED_TRACE(tag);
    StreamWalk server = walk(kServer, {kSelect1 + ready('I'), msg('C', tag) + ready('I')});
    EXPECT_EQ(server.result, PGNAP_WALK_STOP);
    EXPECT_EQ(server.w.ready, 1u);
    // Split inside the tag: the stop comes with its last byte, the NUL.
    const std::string complete = msg('C', tag);
    for (std::size_t cut = 1; cut < complete.size(); ++cut) {
      server = walk(kServer, {complete.substr(0, cut), complete.substr(cut) + ready('I')});
      EXPECT_EQ(server.result, PGNAP_WALK_STOP) << cut;
      EXPECT_EQ(server.resume, cut);
      EXPECT_EQ(check_resume(kServer, bytes(complete + ready('I')), server, 0x7fffffff, {}), "") << cut;
    }
    // Whatever follows the NUL: the tag is what counts.
    server = walk(kServer, {msg('C', tag + "junk")});
    EXPECT_EQ(server.result, PGNAP_WALK_STOP);
  }
  for (const std::string& tag :
       {"LISTENER\0"s, "DISCARD PLANS\0"s, "SELECT 1\0"s, "LISTEN"s, "DISCARD ALL"s, ""s, "DISCARD\0"s, "L\0"s}) {
    SCOPED_TRACE(tag);
    const StreamWalk server = walk(kServer, {msg('C', tag) + ready('I')});
    EXPECT_EQ(server.result, PGNAP_WALK_MORE);
    EXPECT_EQ(server.w.ready, 1u);
    EXPECT_EQ(server.w.header_have, 0);
  }
  // A client's Close with such a body is not a command tag.
  EXPECT_EQ(walk(kClient, {msg('C', "LISTEN\0"s)}).result, PGNAP_WALK_MORE);
}

TEST(Walk, ReadyForQueryWithoutStatusStops) {
  StreamWalk server = walk(kServer, {kSelect1 + header('Z', 4) + ready('I')});
  EXPECT_EQ(server.result, PGNAP_WALK_STOP);
  EXPECT_EQ(server.resume, 0u);
  // The segment ends with its header: nothing to decide yet, and the scanner gets it back.
  server = walk(kServer, {kSelect1 + header('Z', 4)});
  EXPECT_EQ(server.result, PGNAP_WALK_MORE);
  EXPECT_EQ(server.w.header_have, 5);
  EXPECT_EQ(server.w.committed, 0);
  EXPECT_EQ(resume_rule(server.w).prefix, header('Z', 4));
  server = walk(kServer, {kSelect1 + header('Z', 4), ready('I')});
  EXPECT_EQ(server.result, PGNAP_WALK_STOP);
  EXPECT_EQ(server.resume, kSelect1.size() + 5);
}

TEST(Walk, BadLength) {
  const pgnap_walk_cfg client = make_cfg(PGNAP_SIDE_CLIENT, 100);
  EXPECT_EQ(walk(client, {msg('Q', "x\0"s) + header('Q', 3)}).result, PGNAP_WALK_BAD_LENGTH);
  EXPECT_EQ(walk(kServer, {header('D', 3) + "\0\0\0"s}).result, PGNAP_WALK_BAD_LENGTH);
  EXPECT_EQ(walk(client, {msg('Q', std::string(97, 'x'))}).result, PGNAP_WALK_BAD_LENGTH);
  EXPECT_EQ(walk(client, {header('Q', 101)}).result, PGNAP_WALK_BAD_LENGTH);
  EXPECT_EQ(walk(kServer, {header('D', 0x80000000u)}).result, PGNAP_WALK_BAD_LENGTH);
  // The limit itself is allowed, and so is 4.
  StreamWalk ok = walk(client, {msg('Q', std::string(96, 'x')) + header('S', 4)});
  EXPECT_EQ(ok.result, PGNAP_WALK_MORE);
  EXPECT_EQ(ok.w.sync_points, 2u);
  // A bad length word completed in a later segment: that segment goes back.
  const StreamWalk late = walk(client, {msg('S', "") + "Q\0"s, "\0\0\x03"s});
  EXPECT_EQ(late.result, PGNAP_WALK_BAD_LENGTH);
  EXPECT_EQ(late.resume, 7u);
  EXPECT_EQ(late.w.sync_points, 1u);
}

// The hand-back in each of its cases.
TEST(Resume, EachCase) {
  const std::string stream = kSelect1 + msg('C', "LISTEN\0"s) + ready('I');
  const auto at = [&](std::size_t cut) { return walk_stream(kServer, bytes(stream), {cut, stream.size()}, 1); };
  // At a boundary: nothing.
  Resume r = resume_rule(at(kSelect1.size()).w);
  EXPECT_EQ(r.prefix, "");
  EXPECT_EQ(r.skip, 0u);
  // Inside a header: its bytes so far.
  r = resume_rule(at(kSelect1.size() + 3).w);
  EXPECT_EQ(r.prefix, stream.substr(kSelect1.size(), 3));
  // Inside a tag that may be LISTEN: the header and the tag so far.
  r = resume_rule(at(kSelect1.size() + 5 + 3).w);
  EXPECT_EQ(r.prefix, header('C', 11) + "LIS");
  // Inside a counted message: the rest is skipped.
  r = resume_rule(at(3 + 5).w);
  EXPECT_EQ(r.prefix, "");
  EXPECT_EQ(r.skip, kSelect1.size() - 8);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    EXPECT_EQ(check_resume(kServer, bytes(stream), at(cut), 0x7fffffff, {}), "") << cut;
  }
  // The bytes so far end inside a counted message: its rest is still to come, and skipped.
  const std::string cut_short = stream.substr(0, 10);
  const StreamWalk inside = walk_stream(kServer, bytes(cut_short), {cut_short.size()}, 1);
  EXPECT_EQ(resume_rule(inside.w).skip, kSelect1.size() - 10);
  EXPECT_EQ(check_resume(kServer, bytes(cut_short), inside, 0x7fffffff, {}), "");
}

// The checks themselves catch a hand-back that counts a message twice or loses one.
TEST(Resume, TheChecksCatchAWrongHandBack) {
  const std::string stream = msg('Q', "SELECT 1\0"s) + msg('Q', "SELECT 2\0"s);
  StreamWalk w = walk_stream(kClient, bytes(stream), {8, stream.size()}, 1);
  ASSERT_EQ(check_resume(kClient, bytes(stream), w, 0x7fffffff, {}), "");
  w.w.committed = 0;  // the Query would be re-fed, though the walker counted it
  EXPECT_NE(check_resume(kClient, bytes(stream), w, 0x7fffffff, {}), "");
  w.w.committed = 1;
  w.w.sync_points = 0;  // as if not counted, but skipped
  EXPECT_NE(check_resume(kClient, bytes(stream), w, 0x7fffffff, {}), "");
  EXPECT_NE(check_walked(kClient, bytes(stream), w), "");
  w.w.sync_points = 1;
  w.w.remaining += 1;  // one byte of the next message skipped
  EXPECT_NE(check_resume(kClient, bytes(stream), w, 0x7fffffff, {}), "");
}

// ---- Random streams ----

struct Generated {
  std::string stream;
  std::vector<Message> messages;
};

const std::string kClientTypes = "QFSPBEDCHXdcf";
const std::string kServerTypes = "123ACDEGHIKNRSTWZcdnstv";
const std::string kTags[] = {"LISTEN\0"s,        "DISCARD ALL\0"s, "SELECT 1\0"s, "SELECT 1\0"s,  "LISTENER\0"s,
                             "DISCARD PLANS\0"s, "INSERT 0 1\0"s,  "LISTEN"s,     "DISCARD ALL"s, ""s,
                             "DISCARD\0"s};

Generated generate(std::mt19937& rng, std::uint32_t side) {
  Generated g;
  const std::string& own = side == PGNAP_SIDE_CLIENT ? kClientTypes : kServerTypes;
  const std::string& other = side == PGNAP_SIDE_CLIENT ? kServerTypes : kClientTypes;
  const int n = std::uniform_int_distribution<int>(0, 30)(rng);
  for (int i = 0; i < n; ++i) {
    const std::string& types = rng() % 5 == 0 ? other : own;
    const char type = types[rng() % types.size()];
    std::string body;
    if (type == 'Z' && rng() % 20 != 0) {
      body = std::string(1, "ITE"[rng() % 3]);
    } else if (type == 'C' && rng() % 10 != 0) {
      body = kTags[rng() % std::size(kTags)];
    } else {
      body.resize(std::uniform_int_distribution<std::size_t>(0, 300)(rng));
      for (char& c : body) c = static_cast<char>(rng() % 4 == 0 ? "LISTEN DCARZ\0"[rng() % 13] : rng());
    }
    const std::string m = msg(type, body);
    g.messages.push_back(
        {g.stream.size(), type, static_cast<std::uint32_t>(m.size() - 1),
         std::vector<std::uint8_t>(
             m.begin() + 5, m.begin() + 5 + static_cast<std::ptrdiff_t>(std::min<std::size_t>(body.size(), 64)))});
    g.stream += m;
  }
  return g;
}

pgnap_walk_cfg random_cfg(std::mt19937& rng, std::uint32_t side) {
  static constexpr std::uint32_t kMax[] = {0x7fffffff, 0x7fffffff, 1 << 20, 200};
  pgnap_walk_cfg cfg = make_cfg(side, kMax[rng() % 4]);
  switch (rng() % 3) {
    case 0: break;
    case 1:  // as the relay arms it
      if (side == PGNAP_SIDE_CLIENT) {
        stop_on(cfg, 'X');
      } else {
        for (const char t : "EAKS"s.substr(0, 3 + rng() % 2)) stop_on(cfg, static_cast<unsigned char>(t));
      }
      break;
    default:
      for (int i = 0; i < 3; ++i) stop_on(cfg, static_cast<unsigned char>((kClientTypes + kServerTypes)[rng() % 36]));
  }
  return cfg;
}

std::vector<std::size_t> random_segments(std::mt19937& rng, std::size_t total) {
  static constexpr std::size_t kLargest[] = {1, 6, 40, 700};
  const std::size_t largest = kLargest[rng() % 4];
  std::vector<std::size_t> sizes;
  for (std::size_t sum = 0; sum < total;) {
    sizes.push_back(std::uniform_int_distribution<std::size_t>(1, largest)(rng));
    sum += sizes.back();
  }
  return sizes;
}

// Under ASan+UBSan a round costs about ten times as much (this test took 88 s of CI's sanitizer
// stage): a quarter of the rounds there, where the kernel_walk fuzzer explores the same
// walker under the same sanitizers.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kResumeRounds = 2500;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kResumeRounds = 2500;
#else
constexpr int kResumeRounds = 10000;
#endif
#else
constexpr int kResumeRounds = 10000;
#endif

TEST(Resume, NoMessageCountedTwiceOrLostOnRandomStreams) {
  std::mt19937 rng(20240601);
  int resumed_inside = 0;
  int stopped = 0;
  for (int round = 0; round < kResumeRounds; ++round) {
    const std::uint32_t side = rng() % 2;
    const Generated g = generate(rng, side);
    const pgnap_walk_cfg cfg = random_cfg(rng, side);
    const std::vector<std::size_t> segments = random_segments(rng, g.stream.size());
    const std::size_t forward = std::uniform_int_distribution<std::size_t>(0, segments.size())(rng);
    const StreamWalk w = walk_stream(cfg, bytes(g.stream), segments, forward);
    // User space reads what was not forwarded, the segment handed back included.
    const std::vector<std::size_t> rest(segments.begin() + static_cast<std::ptrdiff_t>(w.forwarded), segments.end());
    // Built only for a failure's message: under the sanitizers, writing it out for each of the
    // rounds took most of this test's two minutes.
    const auto where = [&] {
      std::string text = "round " + std::to_string(round) + ", side " + std::to_string(side) + ", max " +
                         std::to_string(cfg.max_length) + ", resume at " + std::to_string(w.resume) + ", segments";
      for (const std::size_t s : segments) text += " " + std::to_string(s);
      return text + ", stream " + hex(bytes(g.stream));
    };

    // The generator's messages are the stream's, as the scanner sees them from the start.
    const Scan whole = scan(0x7fffffff, {}, bytes(g.stream), {}, 0);
    ASSERT_EQ(whole.messages, g.messages) << where();
    ASSERT_EQ(check_stops(cfg, bytes(g.stream), segments, w), "") << where();
    ASSERT_EQ(check_walked(cfg, bytes(g.stream), w), "") << where();
    ASSERT_EQ(check_resume(cfg, bytes(g.stream), w, 0x7fffffff, rest), "") << where();
    // About a step per byte: an empty CommandComplete's header costs one more step, taken in
    // the next segment when its header ends one.
    ASSERT_LE(w.max_extra_steps, 1u) << where();
    resumed_inside += w.w.header_have != 0;
    stopped += w.result != PGNAP_WALK_MORE;
  }
  // The interesting cases were reached.
  EXPECT_GT(resumed_inside, kResumeRounds / 10);
  EXPECT_GT(stopped, kResumeRounds / 10);
}

}  // namespace
}  // namespace pgnap::bpftest
