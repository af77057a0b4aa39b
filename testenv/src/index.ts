export { startControlPlane, ensureControlPlaneBinaries, type ControlPlane, type ControlPlaneOptions } from "./control-plane.ts";
export { startEnvironment, type LocalEnvironment } from "./environment.ts";
export { StartError } from "./errors.ts";
export { freePort, isListening } from "./ports.ts";
export { startPostgres, startRedis, createTestDatabase, type Service } from "./services.ts";
