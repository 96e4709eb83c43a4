// The text helpers every report format shares (report_text.h): numbers, times, money, and
// text from the ledger made safe for a terminal, XML or JSON.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "accounting/report.h"
#include "accounting/report_text.h"

namespace pgnap::accounting::report_text {

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  if (ec != std::errc{}) return "n/a";  // beyond 64 characters: not a figure we produce
  std::string s(buf, end);
  if (s.front() == '-' && s.find_first_not_of("-0.") == std::string::npos) s.erase(0, 1);
  return s;
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == 0) return "0";  // never "-0"
  // 15 significant digits: every decimal figure the model starts from reads back as written
  // (1.872, not the binary neighbour 1.8719999999999999), far beyond the model's accuracy.
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 15);
  return ec == std::errc{} ? std::string(buf, end) : "null";
}

namespace {

std::tm utc_fields(UnixTime t) {
  const auto secs = static_cast<std::time_t>(std::floor(t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

std::size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

bool valid_sequence(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  for (std::size_t i = 1; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return false;
  }
  if (s.size() < 2) return true;
  const auto b1 = static_cast<unsigned char>(s[1]);
  if (b0 == 0xE0 && b1 < 0xA0) return false;   // overlong
  if (b0 == 0xED && b1 >= 0xA0) return false;  // UTF-16 surrogates
  if (b0 == 0xF0 && b1 < 0x90) return false;   // overlong
  if (b0 == 0xF4 && b1 >= 0x90) return false;  // beyond U+10FFFF
  // U+FFFE and U+FFFF are not XML characters either.
  if (b0 == 0xEF && b1 == 0xBF && s.size() == 3 && static_cast<unsigned char>(s[2]) >= 0xBE) return false;
  return true;
}

}  // namespace

std::string iso_utc(UnixTime t) {
  const std::tm tm = utc_fields(t);
  char buf[80];  // room for any int, so the compiler can prove no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string human_utc(UnixTime t) {
  const std::tm tm = utc_fields(t);
  char buf[80];  // room for any int, so the compiler can prove no truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min);
  return buf;
}

std::string grid_text(const Accounting& a) {
  return number(a.grid_intensity) + " gCO2e/kWh, " + a.grid_source + " (" + std::to_string(a.grid_year) + ")";
}

std::string money(double amount, std::string_view currency) { return fixed(amount, 2) + " " + std::string(currency); }

std::string clean_utf8(std::string_view s) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_sequence_length(c);
    if (n == 1) {
      const bool allowed = c >= 0x20 || c == '\t' || c == '\n' || c == '\r';
      if (allowed && c != 0x7F) {
        out += static_cast<char>(c);
      } else {
        out += kReplacement;
      }
      ++i;
    } else if (n != 0 && i + n <= s.size() && valid_sequence(s.substr(i, n))) {
      out += s.substr(i, n);
      i += n;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

std::string escape_xml(std::string_view s) {
  std::string out;
  for (const char c : clean_utf8(s)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : clean_utf8(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += c;  // clean_utf8 left no other control character
    }
  }
  out += '"';
  return out;
}


std::string one_line(std::string_view s) {
  std::string out;
  const std::string clean = clean_utf8(s);
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const char c = clean[i];
    // C1 controls (U+0080-U+009F, UTF-8 C2 80-9F) too: some terminals obey them.
    if (static_cast<unsigned char>(c) == 0xC2 && i + 1 < clean.size() &&
        static_cast<unsigned char>(clean[i + 1]) >= 0x80 && static_cast<unsigned char>(clean[i + 1]) <= 0x9F) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out += c == '\t' || c == '\n' || c == '\r' ? ' ' : c;
    }
  }
  return out;
}

std::string wakes_per_day_text(std::uint64_t wakes, double per_day) {
  return std::to_string(wakes) + (wakes == 1 ? " wake, " : " wakes, ") + fixed(per_day, 1) + "/day";
}

std::string source_name(const std::string& name, bool application) {
  if (name.empty()) return application ? "(none)" : "(unknown)";
  return name;
}

std::string sources_text(const std::vector<WakeSource>& sources, std::uint64_t others, bool application) {
  std::string out;
  for (const WakeSource& s : sources) {
    out += (out.empty() ? "" : ", ") + one_line(source_name(s.name, application)) + " " + std::to_string(s.wakes);
  }
  if (others > 0) out += ", others " + std::to_string(others);
  return out.empty() ? "-" : out;
}

std::string maintenance_text(const InstanceReport& r) {
  std::string out = std::to_string(r.maintenance_runs) + (r.maintenance_runs == 1 ? " run, " : " runs, ") +
                    std::to_string(r.maintenance_failed) + " failed";
  if (r.last_maintenance) {
    const MaintenanceRow& m = *r.last_maintenance;
    out += "; last " + human_utc(m.started_at) + " UTC, " +
           (m.exit_status >= 0 ? "exit status " + std::to_string(m.exit_status) : std::string("no exit status")) +
           " (" + one_line(m.outcome) + ")";
  }
  return out;
}

}  // namespace pgnap::accounting::report_text
