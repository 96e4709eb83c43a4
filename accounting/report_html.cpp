// The report as one self-contained HTML page: the savings in big numbers, then per instance
// a timeline (inline SVG) of its asleep and awake bands and its wakes, and its figures.
//
// No external assets, no script: inline CSS (light and dark), native SVG <title> tooltips.
// The page is also well-formed XML (every element closed, attributes quoted, text escaped,
// numeric character references only), so it can be checked and post-processed as XHTML.
#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <ctime>
#include <set>

#include "accounting/report.h"
#include "accounting/report_text.h"
#include "config/duration.h"

namespace pgnap::accounting {

namespace {

using namespace report_text;

// ---- the timeline's geometry (SVG user units; the SVG scales to the page's width) ----

constexpr double kWidth = 1000;
constexpr double kLeft = 36;  // room for the first and last axis labels
constexpr double kRight = kWidth - 36;
constexpr double kMarkTop = 4;  // wake markers above the band
constexpr double kBandTop = 20;
constexpr double kBandHeight = 36;
constexpr double kBandBottom = kBandTop + kBandHeight;
constexpr double kHeight = 84;
// A short awake spell in a long window would be narrower than a pixel: draw it at least
// this wide, so every wake that led to work stays visible.
constexpr double kMinBand = 1.5;

constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct Scale {
  UnixTime since;
  UnixTime until;
  [[nodiscard]] double x(UnixTime t) const {
    const double span = until > since ? until - since : 1;
    const double f = std::clamp((t - since) / span, 0.0, 1.0);
    return kLeft + f * (kRight - kLeft);
  }
};

std::string n1(double v) { return fixed(v, 1); }

std::string state_class(const std::string& state) {
  for (const char* known : {"asleep", "waking", "awake", "suspending", "failed"}) {
    if (state == known) return known;
  }
  return "other";
}

// ---- axis ticks: round UTC times, at most about eight across the window ----

struct Tick {
  UnixTime at;
  std::string label;
};

std::string day_label(const std::tm& tm) { return std::string(kMonths[tm.tm_mon]) + " " + std::to_string(tm.tm_mday); }

std::vector<Tick> axis_ticks(UnixTime since, UnixTime until) {
  std::vector<Tick> ticks;
  const double span = until - since;
  if (!(span > 0)) return ticks;
  static constexpr double kSteps[] = {60,       300,      600,       900,   1800,      3600,      2 * 3600,
                                      3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400};
  constexpr double kMaxTicks = 8;
  for (const double step : kSteps) {
    if (span / step > kMaxTicks) continue;
    for (double t = std::ceil(since / step) * step; t <= until; t += step) {
      const auto secs = static_cast<std::time_t>(t);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      char hhmm[32];
      std::snprintf(hhmm, sizeof hhmm, "%02d:%02d", tm.tm_hour, tm.tm_min);
      const bool midnight = tm.tm_hour == 0 && tm.tm_min == 0;
      ticks.push_back({t, step >= 86400 || midnight ? day_label(tm) : std::string(hhmm)});
    }
    return ticks;
  }
  // Longer windows: month starts, every 1, 3 or 6 months, or every 1, 2, 5... years.
  const double months_in_span = span / (30.44 * 86400);
  int every = 1200;
  for (const int m : {1, 3, 6, 12, 24, 60, 120, 240, 600}) {
    if (months_in_span / m <= kMaxTicks) {
      every = m;
      break;
    }
  }
  const auto start = static_cast<std::time_t>(since);
  std::tm tm{};
  gmtime_r(&start, &tm);
  int year = tm.tm_year, month = tm.tm_mon;
  if (tm.tm_mday != 1 || tm.tm_hour != 0 || tm.tm_min != 0 || tm.tm_sec != 0) ++month;
  month = (month + every - 1) / every * every;  // align to the step (Jan, Apr, Jul, Oct...)
  for (;; month += every) {
    std::tm m{};
    m.tm_year = year + month / 12;
    m.tm_mon = month % 12;
    m.tm_mday = 1;
    const std::time_t t = timegm(&m);
    if (static_cast<double>(t) > until || ticks.size() > 2 * kMaxTicks) break;
    ticks.push_back({static_cast<UnixTime>(t),
                     every >= 12 ? std::to_string(m.tm_year + 1900)
                                 : std::string(kMonths[m.tm_mon]) + " " + std::to_string(m.tm_year + 1900)});
  }
  return ticks;
}

// ---- one instance's timeline ----

std::string interval_title(const IntervalRow& iv) {
  std::string t = iv.state + ", " + human_utc(iv.start) + " to " + human_utc(iv.end) + " UTC (" +
                  config::format_elapsed(std::chrono::duration<double>(iv.end - iv.start)) + ")";
  if (iv.open) t += ", still open at its last heartbeat";
  if (!iv.start_reason.empty()) t += ", because: " + iv.start_reason;
  return t;
}

std::string wake_title(const WakeRow& w) {
  std::string t = (w.outcome == "ok" ? "wake at " : "failed wake (" + w.outcome + ") at ") + human_utc(w.requested_at) +
                  " UTC, " + fixed(w.duration_s, 2) + " s, " + std::to_string(w.clients_waited) +
                  (w.clients_waited == 1 ? " client" : " clients") + " waited";
  if (!w.started) t += ", server was already up";
  if (w.cause == "client") {
    t += ", for " + source_name(w.application_name, true) + " from " +
         source_name(address_without_port(w.client_address), false);
  } else {
    t += ", " + w.cause + (w.cause_detail.empty() ? "" : " (" + w.cause_detail + ")");
  }
  if (!w.detail.empty()) t += ": " + w.detail;
  return t;
}

// Where the timelines start: the window's start, or the first record when the window
// reaches far before it (as `--since` left out does); a timeline of mostly "no record"
// would squeeze every band into a sliver.
UnixTime view_start(const Report& report) {
  UnixTime first = report.until;
  for (const InstanceReport& r : report.instances) {
    if (!r.intervals.empty()) first = std::min(first, r.intervals.front().start);
    if (!r.wake_rows.empty()) first = std::min(first, r.wake_rows.front().requested_at);
  }
  if (first >= report.until) return report.since;
  // Keep a little "no record" before it when the gap is small, so the start still shows.
  const double gap = first - report.since;
  return gap > 0.1 * (report.until - report.since) ? first : report.since;
}

std::string timeline(const Report& report, UnixTime start, const InstanceReport& r, std::size_t index) {
  const Scale scale{start, report.until};
  const std::string clip = "tl-clip-" + std::to_string(index);
  std::string out;
  out += "<svg class=\"timeline\" data-instance=\"" + escape_xml(r.name) +
         "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + n1(kWidth) + " " + n1(kHeight) +
         "\" role=\"img\" aria-label=\"" +
         escape_xml("Timeline of " + r.name + ": asleep " + fixed(r.share_asleep * 100, 1) + "% of the time") + "\">\n";
  out += "<title>" + escape_xml(r.name + " from " + human_utc(start) + " to " + human_utc(report.until) + " UTC") +
         "</title>\n";
  out += "<defs><clipPath id=\"" + clip + "\"><rect x=\"" + n1(kLeft) + "\" y=\"" + n1(kBandTop) + "\" width=\"" +
         n1(kRight - kLeft) + "\" height=\"" + n1(kBandHeight) + "\" rx=\"6\"/></clipPath></defs>\n";

  // The band: "no record" underneath, asleep spans, then the shorter awake-side spans on top.
  out += "<g clip-path=\"url(#" + clip + ")\">\n";
  out += "<rect class=\"nodata\" x=\"" + n1(kLeft) + "\" y=\"" + n1(kBandTop) + "\" width=\"" + n1(kRight - kLeft) +
         "\" height=\"" + n1(kBandHeight) + "\"><title>no record</title></rect>\n";
  for (const bool asleep_pass : {true, false}) {
    for (const IntervalRow& iv : r.intervals) {
      if ((iv.state == "asleep") != asleep_pass) continue;
      const double x0 = scale.x(iv.start);
      double w = scale.x(iv.end) - x0;
      if (!asleep_pass) w = std::max(w, kMinBand);
      out += "<rect class=\"" + state_class(iv.state) + "\" x=\"" + fixed(x0, 2) + "\" y=\"" + n1(kBandTop) +
             "\" width=\"" + fixed(w, 2) + "\" height=\"" + n1(kBandHeight) + "\"><title>" +
             escape_xml(interval_title(iv)) + "</title></rect>\n";
    }
  }
  const std::vector<Tick> ticks = axis_ticks(start, report.until);
  for (const Tick& t : ticks) {  // faint gridlines across the band
    const std::string x = fixed(scale.x(t.at), 2);
    out += "<line class=\"grid\" x1=\"" + x + "\" y1=\"" + n1(kBandTop) + "\" x2=\"" + x + "\" y2=\"" +
           n1(kBandBottom) + "\"/>\n";
  }
  out += "</g>\n";

  // Wakes: a tick for each successful one, a cross for each failed one.
  for (const WakeRow& w : r.wake_rows) {
    const double x = scale.x(w.requested_at);
    if (w.outcome == "ok") {
      out += "<g class=\"wake\"><title>" + escape_xml(wake_title(w)) + "</title><line x1=\"" + fixed(x, 2) +
             "\" y1=\"" + n1(kMarkTop) + "\" x2=\"" + fixed(x, 2) + "\" y2=\"" + n1(kBandTop - 3) + "\"/></g>\n";
    } else {
      const double y0 = kMarkTop + 1, y1 = kBandTop - 4;
      out += "<g class=\"wake-failed\"><title>" + escape_xml(wake_title(w)) + "</title><path d=\"M" + fixed(x - 4, 2) +
             " " + n1(y0) + "L" + fixed(x + 4, 2) + " " + n1(y1) + "M" + fixed(x + 4, 2) + " " + n1(y0) + "L" +
             fixed(x - 4, 2) + " " + n1(y1) + "\"/></g>\n";
    }
  }

  // The axis.
  out += "<line class=\"axis\" x1=\"" + n1(kLeft) + "\" y1=\"" + n1(kBandBottom + 4) + "\" x2=\"" + n1(kRight) +
         "\" y2=\"" + n1(kBandBottom + 4) + "\"/>\n";
  for (const Tick& t : ticks) {
    const std::string x = fixed(scale.x(t.at), 2);
    out += "<line class=\"axis\" x1=\"" + x + "\" y1=\"" + n1(kBandBottom + 4) + "\" x2=\"" + x + "\" y2=\"" +
           n1(kBandBottom + 9) + "\"/>\n";
    out += "<text class=\"tl\" x=\"" + x + "\" y=\"" + n1(kBandBottom + 22) + "\" text-anchor=\"middle\">" +
           escape_xml(t.label) + "</text>\n";
  }
  out += "</svg>\n";
  return out;
}

// ---- the page ----

// Inline, so the page needs nothing else. Contains no '<' or '&' (the page is also XML).
constexpr const char* kStyle = R"css(
:root{--bg:#f5f6fa;--card:#fff;--ink:#1b2232;--muted:#5d667a;--line:#e2e5ed;--accent:#23845c;
--asleep:#3552a3;--awake:#f0a531;--waking:#f7d774;--suspending:#a48fd4;--failed:#d8433e;
--other:#8a93a6;--nodata:#e4e7ee;--tick:#1b2232}
@media (prefers-color-scheme: dark){:root{--bg:#10141d;--card:#181e2b;--ink:#e7ebf3;
--muted:#9aa3b6;--line:#283045;--accent:#5cc495;--asleep:#5877db;--nodata:#252c3c;--tick:#e7ebf3}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:36px 20px 48px}
.eyebrow{text-transform:uppercase;letter-spacing:.09em;color:var(--muted);font-size:12px;margin:0}
h1{font-size:34px;line-height:1.15;margin:6px 0 6px;letter-spacing:-.02em}
.window{color:var(--muted);margin:0 0 26px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:14px;margin:0 0 30px}
.card{background:var(--card);border:1px solid var(--line);border-radius:16px;padding:18px 20px}
.card .big{display:block;font-size:36px;font-weight:700;letter-spacing:-.02em;line-height:1.1;
font-variant-numeric:tabular-nums}
.card .unit{font-size:16px;font-weight:600;color:var(--muted);margin-left:4px}
.card .what{display:block;color:var(--muted);font-size:13px;margin-top:6px}
.card.accent .big{color:var(--accent)}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:6px 18px;padding:0;margin:0 0 14px;
color:var(--muted);font-size:13px}
.legend li{display:flex;align-items:center;gap:6px}
.sw{display:inline-block;width:14px;height:14px;border-radius:3px}
.mk{display:inline-block;width:2px;height:14px;background:var(--tick)}
.mk-failed{color:var(--failed);font-weight:700}
section.instance{background:var(--card);border:1px solid var(--line);border-radius:16px;
padding:20px 22px;margin:0 0 18px}
h2{font-size:21px;margin:0 0 2px;overflow-wrap:anywhere}
.sub{color:var(--muted);margin:0 0 12px;font-size:14px}
.scroll{overflow-x:auto}
svg.timeline{display:block;width:100%;min-width:640px;height:auto}
.asleep{fill:var(--asleep);background:var(--asleep)}
.awake{fill:var(--awake);background:var(--awake)}
.waking{fill:var(--waking);background:var(--waking)}
.suspending{fill:var(--suspending);background:var(--suspending)}
.failed{fill:var(--failed);background:var(--failed)}
.other{fill:var(--other);background:var(--other)}
.nodata{fill:var(--nodata);background:var(--nodata)}
.grid{stroke:var(--card);stroke-opacity:.45;stroke-width:1}
.axis{stroke:var(--muted);stroke-width:1}
.tl{fill:var(--muted);font-size:12px}
.wake line{stroke:var(--tick);stroke-width:1.6}
.wake-failed path{stroke:var(--failed);stroke-width:2.2;fill:none;stroke-linecap:round}
p.capacity{margin:10px 0 0;font-size:14px;color:var(--muted)}
table.figures{border-collapse:collapse;width:100%;margin-top:14px;font-size:14px}
table.figures th{text-align:left;font-weight:500;color:var(--muted);padding:6px 14px 6px 0;
width:34%;border-top:1px solid var(--line);vertical-align:top}
table.figures td{padding:6px 0;border-top:1px solid var(--line);font-variant-numeric:tabular-nums}
.note{color:var(--muted)}
.neg{color:var(--failed)}
footer{color:var(--muted);font-size:13px;margin-top:30px;border-top:1px solid var(--line);padding-top:16px}
footer p{margin:0 0 8px}
footer a{color:inherit}
)css";

std::string card(const std::string& big, const std::string& unit, const std::string& what, bool accent = false) {
  return std::string("<div class=\"card") + (accent ? " accent" : "") + "\"><span class=\"big\">" + escape_xml(big) +
         (unit.empty() ? "" : "<span class=\"unit\">" + escape_xml(unit) + "</span>") + "</span><span class=\"what\">" +
         escape_xml(what) + "</span></div>\n";
}

std::string row(const std::string& name, const std::string& value_html) {
  return "<tr><th>" + escape_xml(name) + "</th><td>" + value_html + "</td></tr>\n";
}

std::string note(const std::string& text) { return " <span class=\"note\">" + escape_xml(text) + "</span>"; }

// The measured basis: what the database used while idle-awake, what sleeping avoided of it,
// and what that is worth; or why there is nothing measured.
std::string measured_rows(const InstanceReport& r) {
  const MeasuredReport& m = r.measured;
  const Accounting& a = r.accounting;
  if (!m.available) return row("Measured", escape_xml("-") + note("(" + m.note + ")"));
  std::string out;
  out += row("Measured while idle-awake",
             escape_xml(utilisation_text(m.rates.cpu_utilisation) + ", " + bytes_text(m.idle.memory_bytes())) +
                 note("(" + m.note + ")"));
  if (m.busy.seconds > 0) {
    out += row("Measured while in use",
               escape_xml(utilisation_text(m.busy.cpu_utilisation()) + ", " + bytes_text(m.busy.memory_bytes())) +
                   note("(over " + fixed(m.busy.seconds / 3600, 2) + " h; for comparison, not counted)"));
  }
  out += row("CPU time avoided", escape_xml(fixed(m.savings.cpu_seconds, 1) + " CPU-seconds") +
                                     note("(idle rate × " + fixed(r.activity.hours_asleep, 2) + " h asleep; starts used " +
                                          fixed(m.savings.start_cpu_seconds, 1) + " s of one vCPU)"));
  out += row("Memory freed", escape_xml(fixed(m.savings.memory_gb_hours, 3) + " GB-hours") +
                                 note("(" + bytes_text(m.idle.memory_bytes()) + " for " +
                                      fixed(r.activity.hours_asleep, 2) + " h)"));
  const std::string neg = fixed(m.savings.energy_kwh, 3).front() == '-' ? " class=\"neg\"" : "";
  out += row("Energy saved (measured)", "<span" + neg + ">" + escape_xml(fixed(m.savings.energy_kwh, 3) + " kWh") +
                                            "</span>" +
                                            note("(" + fixed(m.savings.watts * 1000, 1) + " mW while idle-awake, PUE " +
                                                 number(a.pue) + ")"));
  out += row("Carbon saved (measured)", "<span" + neg + ">" + escape_xml(fixed(m.savings.carbon_g, 1) + " gCO2e") +
                                            "</span>" + note("at " + grid_text(a)));
  out += row("Money saved (measured)",
             escape_xml(money(m.savings.cost, a.currency)) +
                 note(a.price_per_gb_hour == 0 ? "(no price_per_gb_hour configured)"
                                               : "(" + number(a.price_per_gb_hour) + " " + a.currency + " per GB-hour)"));
  return out;
}

// Memory freed while asleep, as capacity the owner can use: shown next to the timeline.
std::string capacity(const InstanceReport& r) {
  const MeasuredReport& m = r.measured;
  if (!m.available) {
    std::string why = m.note;
    if (!why.empty()) why[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(why[0])));
    return "<p class=\"capacity\">" + escape_xml("Basis: model. " + why + ".") + "</p>\n";
  }
  const double recorded = r.activity.hours_asleep + r.activity.hours_awake;
  const double share = recorded > 0 ? r.activity.hours_asleep / recorded : 0;
  return "<p class=\"capacity\">" +
         escape_xml("Basis: measured. While asleep, " + bytes_text(m.idle.memory_bytes()) + " of memory and " +
                    utilisation_text(m.rates.cpu_utilisation) + " were free for " + fixed(share * 100, 1) +
                    "% of the recorded time: room for another site of that size on the same machine.") +
         "</p>\n";
}

std::string figures(const InstanceReport& r) {
  const Accounting& a = r.accounting;
  const Savings& s = r.savings;
  const Power p = power_of(a);
  const std::uint64_t ok = r.wakes - r.wakes_failed;
  std::string out = "<table class=\"figures\"><tbody>\n";
  out += row("Asleep", escape_xml(fixed(r.activity.hours_asleep, 2) + " h") +
                           note("(" + fixed(r.share_asleep * 100, 1) + "% of the recorded time)"));
  out += row("Awake", escape_xml(fixed(r.activity.hours_awake, 2) + " h") + note("(waking, awake and suspending)"));
  if (r.hours_failed > 0) {
    out += row("Down after a failed wake", escape_xml(fixed(r.hours_failed, 2) + " h"));
  }
  out += row("Wakes",
             escape_xml(std::to_string(r.wakes)) + note("(" + std::to_string(r.wakes_failed) + " failed; " +
                                                        std::to_string(r.activity.starts) + " ran the start command)"));
  out += row("Wake time, median / 95th percentile",
             ok == 0 ? escape_xml("-") : escape_xml(fixed(r.wake_p50_s, 2) + " s / " + fixed(r.wake_p95_s, 2) + " s"));
  out += row("Clients that waited", escape_xml(std::to_string(r.clients_waited)));
  if (r.wakes > 0) {
    out += row("Wakes by cause",
               escape_xml(std::to_string(r.wakes_client) + " client, " + std::to_string(r.wakes_manual) + " manual, " +
                          std::to_string(r.wakes_window) + " window, " + std::to_string(r.wakes_maintenance) +
                          " maintenance") +
                   note("(" + fixed(r.wakes_per_day, 1) + " wakes a day)"));
  }
  if (r.wakes_client > 0) {
    const std::string among = "(top " + std::to_string(kTopWakeSources) + ", among all " +
                              std::to_string(r.wakes_client) + " client wakes)";
    out += row("Woken by application_name",
               escape_xml(sources_text(r.top_applications, r.other_applications_wakes, true)) + note(among));
    out += row("Woken from address",
               escape_xml(sources_text(r.top_addresses, r.other_addresses_wakes, false)) + note(among));
  }
  if (r.maintenance_runs > 0) out += row("Maintenance runs", escape_xml(maintenance_text(r)));
  const std::string neg = fixed(s.energy_kwh, 3).front() == '-' ? " class=\"neg\"" : "";
  // The parts in Wh: a wake's share is usually far below what 3 decimals of a kWh show.
  out += measured_rows(r);
  out += row("Energy saved (model)", "<span" + neg + ">" + escape_xml(fixed(s.energy_kwh, 3) + " kWh") + "</span>" +
                                 note("(asleep " + fixed(s.idle_energy_kwh * 1000, 2) + " Wh minus wakes " +
                                      fixed(s.wake_energy_kwh * 1000, 2) + " Wh)"));
  out += row("Carbon saved (model)", "<span" + neg + ">" + escape_xml(fixed(s.carbon_g, 1) + " gCO2e") + "</span>" +
                                 note("at " + grid_text(a)));
  out += row("Money saved (model)",
             escape_xml(money(s.cost, a.currency)) +
                 note(a.price_per_hour == 0 ? "(no price_per_hour configured)"
                                            : "(" + number(a.price_per_hour) + " " + a.currency + "/h; wakes billed " +
                                                  money(s.wake_cost, a.currency) + ")"));
  if (s.embodied_g != 0) {
    out += row("Embodied carbon, reported apart",
               escape_xml(fixed(s.embodied_g, 1) + " gCO2e") +
                   note("(" + number(a.embodied_g_per_hour) + " g per hour asleep)"));
  }
  out += row("Model", escape_xml("P_idle " + fixed(p.idle_watts, 3) + " W, P_busy " + fixed(p.busy_watts, 3) +
                                 " W, PUE " + number(a.pue)));
  out += "</tbody></table>\n";
  return out;
}

std::string headline(const Report& report) {
  if (report.instances.empty()) return "No instances in this report";
  if (report.hours_asleep + report.hours_awake <= 0) return "Nothing recorded in this window";
  const std::string share = fixed(report.share_asleep * 100, 1) + "%";
  if (report.instances.size() == 1) return report.instances.front().name + " slept " + share + " of the time";
  return "Your " + std::to_string(report.instances.size()) + " instances slept " + share + " of the time";
}

}  // namespace

std::string format_html(const Report& report) {
  std::string out;
  out += "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n";
  out += "<meta charset=\"utf-8\"/>\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n";
  out += "<title>" +
         escape_xml("pgnap sleep report, " + human_utc(report.since) + " to " + human_utc(report.until) + " UTC") +
         "</title>\n";
  out += std::string("<style>") + kStyle + "</style>\n</head>\n<body>\n<main>\n";

  out += "<header>\n<p class=\"eyebrow\">pgnap sleep report</p>\n";
  out += "<h1>" + escape_xml(headline(report)) + "</h1>\n";
  const UnixTime start = view_start(report);
  std::string window = human_utc(report.since) + " to " + human_utc(report.until) + " UTC (" +
                       config::format_elapsed(std::chrono::duration<double>(report.until - report.since)) + ")";
  if (start != report.since) window += "; the timelines start at the first record, " + human_utc(start);
  out += "<p class=\"window\">" + escape_xml(window) + "</p>\n</header>\n";

  out += "<div class=\"cards\">\n";
  out += card(fixed(report.hours_asleep, 1), "h", "asleep, against " + fixed(report.hours_awake, 1) + " h awake");
  if (report.instances_measured > 0) {
    // The physical quantities first: true whatever the carbon model.
    out += card(fixed(report.measured_cpu_seconds, 1), "CPU-s", "CPU time not used while asleep (measured)");
    out += card(fixed(report.measured_memory_gb_hours, 2), "GB-h", "memory freed while asleep (measured)");
  }
  out += card(fixed(report.saved_energy_kwh, 3), "kWh", "energy saved (basis: " + report.basis + ")",
              report.saved_energy_kwh > 0);
  out += card(fixed(report.saved_carbon_g, 1), "gCO2e", "carbon saved (basis: " + report.basis + ")",
              report.saved_carbon_g > 0);
  if (report.basis != "model") {
    out += card(fixed(report.energy_kwh, 3), "kWh", "energy saved by the configured model, for comparison");
  }
  for (const auto& [currency, amount] : report.cost_by_currency) {
    out += card(fixed(amount, 2), currency, "money saved (model)");
  }
  if (report.embodied_g != 0) {
    out += card(fixed(report.embodied_g, 1), "gCO2e", "embodied carbon, reported apart");
  }
  out += card(std::to_string(report.wakes), "",
              "wakes, " + std::to_string(report.clients_waited) + " clients waited; median " +
                  fixed(report.wake_p50_s, 2) + " s");
  out += "</div>\n";

  out += "<ul class=\"legend\">\n";
  for (const char* state : {"asleep", "awake", "waking", "suspending", "failed"}) {
    const std::string label = std::string(state) == "failed" ? "down after a failed wake" : state;
    out += "<li><span class=\"sw " + std::string(state) + "\"></span>" + label + "</li>\n";
  }
  out += "<li><span class=\"sw nodata\"></span>no record</li>\n";
  out += "<li><span class=\"mk\"></span>wake</li>\n";
  out += "<li><span class=\"mk-failed\">&#215;</span>failed wake</li>\n";
  out += "</ul>\n";

  for (std::size_t i = 0; i < report.instances.size(); ++i) {
    const InstanceReport& r = report.instances[i];
    out += "<section class=\"instance\">\n<h2>" + escape_xml(r.name) + "</h2>\n";
    out += "<p class=\"sub\">" +
           escape_xml("asleep " + fixed(r.share_asleep * 100, 1) + "% · " +
                      wakes_per_day_text(r.wakes, r.wakes_per_day) + " · " + fixed(r.saved_energy_kwh, 3) + " kWh, " +
                      fixed(r.saved_carbon_g, 1) + " gCO2e saved (" + r.basis + ")") +
           "</p>\n";
    out += "<div class=\"scroll\">\n" + timeline(report, start, r, i) + "</div>\n";
    out += capacity(r);
    out += figures(r);
    out += "</section>\n";
  }

  std::set<std::string> grids;
  for (const InstanceReport& r : report.instances) grids.insert(grid_text(r.accounting));
  std::string grid_list;
  for (const std::string& g : grids) grid_list += (grid_list.empty() ? "" : "; ") + g;

  out += "<footer>\n<p>";
  out += escape_xml(
      "Each instance is compared with the same instance left running idle for the whole window: "
      "energy saved = PUE × (P_idle × hours asleep − P_busy × time spent starting), carbon saved = "
      "energy saved × grid intensity (Green Software Foundation SCI: O = E × I), money saved = hours "
      "asleep × hourly price − starts × minimum billed time. These are attributional estimates of "
      "order of magnitude, not meter readings: on a shared server, stopping PostgreSQL frees "
      "capacity for others but does not switch hardware off. The measured basis counts instead what "
      "the database's own processes used while awake and idle (CPU time and memory, read from /proc or "
      "its cgroup), avoided for every hour asleep: CPU at utilisation × (max − min) W per vCPU (Cloud "
      "Carbon Footprint's form without the vCPUs' own idle draw, which a running machine keeps) and "
      "memory at W per GB; it never claims the machine's own idle power.");
  out +=
      "</p>\n<p>Default power coefficients: <a href=\"https://www.cloudcarbonfootprint.org/docs/methodology/\">"
      "Cloud Carbon Footprint methodology</a> (AWS averages: 0.74 W per vCPU idle, 3.5 W per vCPU "
      "busy, 0.392 W per GB of memory, PUE 1.135). Grid intensity used: " +
      escape_xml(grid_list.empty() ? std::string("none") : grid_list) +
      ". Times are UTC; the method, its sources and caveats are in pgnap&#8217;s docs/accounting.md.</p>\n";
  out += "</footer>\n</main>\n</body>\n</html>\n";
  return out;
}

}  // namespace pgnap::accounting
