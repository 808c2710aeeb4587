// When the mello watchdog (scripts/host/watchdog.sh) will next tear the day stack down, from the
// idle stack's `comfyume:watchdog` settings: the cutoff in its time zone, and whether we are inside
// the cutoff window (cutoff .. morning) right now.
import type { WatchdogSettings } from "../money/settings";

export interface WatchdogStatus {
  enabled: boolean;
  dayStack: string;
  timezone: string;
  cutoff: string;
  morning: string;
  /** The next moment the cutoff passes (UTC ISO). */
  nextCutoff: string;
  /** The local time is in the cutoff window: a day stack still up past cutoff + grace is overdue. */
  inWindow: boolean;
  /** Minutes since the cutoff, when in the window. */
  minutesPastCutoff?: number;
  graceMinutes: number;
  idleMinutes: number;
}

function localParts(at: Date, timeZone: string): { y: number; mo: number; d: number; h: number; mi: number } {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(at);
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  return { y: get("year"), mo: get("month"), d: get("day"), h: get("hour"), mi: get("minute") };
}

/** The UTC instant of a wall-clock time in a time zone (the offset is read twice for DST edges). */
export function zonedTime(y: number, mo: number, d: number, h: number, mi: number, timeZone: string): Date {
  const wanted = Date.UTC(y, mo - 1, d, h, mi);
  let guess = wanted;
  for (let i = 0; i < 2; i++) {
    const p = localParts(new Date(guess), timeZone);
    guess += wanted - Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi);
  }
  return new Date(guess);
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export function watchdogStatus(w: WatchdogSettings, now: Date): WatchdogStatus {
  const local = localParts(now, w.timezone);
  const [ch, cm] = [Number(w.cutoff.slice(0, 2)), Number(w.cutoff.slice(3, 5))];
  let next = zonedTime(local.y, local.mo, local.d, ch, cm, w.timezone);
  if (next.getTime() <= now.getTime()) {
    const tomorrow = new Date(Date.UTC(local.y, local.mo - 1, local.d + 1));
    next = zonedTime(tomorrow.getUTCFullYear(), tomorrow.getUTCMonth() + 1, tomorrow.getUTCDate(), ch, cm, w.timezone);
  }
  const t = local.h * 60 + local.mi;
  const [c, m] = [minutesOf(w.cutoff), minutesOf(w.morning)];
  const inWindow = c > m ? t >= c || t < m : t >= c && t < m;
  return {
    enabled: w.enabled,
    dayStack: w.dayStack,
    timezone: w.timezone,
    cutoff: w.cutoff,
    morning: w.morning,
    nextCutoff: next.toISOString(),
    inWindow,
    minutesPastCutoff: inWindow ? (t - c + 1440) % 1440 : undefined,
    graceMinutes: w.cutoffGraceMinutes,
    idleMinutes: w.idleMinutes,
  };
}
