// Entry point of the `comfyume` Pulumi project: one program, one layer per stack (see infra/program.ts).
import { buildProgram } from "./infra/program";

export = buildProgram();
