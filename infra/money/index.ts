// Money: prices before launch, cost to date, forecasts, budget guard, preflight and sweep.
export * from "./types";
export * from "./prices";
export * from "./model";
export * from "./external";
export * from "./budget";
export * from "./placement";
export * from "./preflight";
export * from "./report";
export * from "./settings";
export * from "./sweep";
export { moneyApi, verdaForMoney, type MoneyApi, type Balance } from "./verda-reads";
export * from "./owned";
export * from "./plan-from-config";
export * from "./collect";
export * from "./stack-io";
export * from "./guard";
export * from "./watchdog-install";
export * from "./phase-check";
