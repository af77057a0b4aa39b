export * from "./types.ts";
export { screenRequest, decide, type ScreenOptions } from "./input.ts";
export { scanText, combinedScore, type ScanOptions, type ScanResult } from "./engine.ts";
export { checkUrl, checkFileName, sanitizeText, hostProblem, URL_PLACEHOLDER, PATH_PLACEHOLDER, type UrlCheck, type UrlCheckOptions, type SanitizedText } from "./urls.ts";
export {
  createOutputFilter, createSseOutputFilter, screenCompletion, contentWarningValue, contentWarningSseComment, CONTENT_WARNING_HEADER,
  type OutputFilter, type OutputFilterOptions, type SseOutputFilter, type SseOutputFilterOptions, type FilterStep,
} from "./output.ts";
export { normalizeOutputText, screeningForms } from "./normalize.ts";
export {
  consultClassifier, screenWithClassifier, modelRouteClassifier, parseClassifierReply, classifierUserMessage,
  type ExternalClassifier, type ClassifierRequest, type ClassifierAnswer, type ClassifierOptions, type ClassifierFallback, type ClassifierOutcome,
} from "./classifier.ts";
export { ContentSafetyPolicy, DEFAULT_POLICY, parsePolicy, shouldConsultClassifier } from "./policy.ts";
export {
  createAnomalyDetector, anomalyAuditEvent, Metrics,
  type AnomalyDetector, type AnomalyEvent, type AnomalyOptions, type TrafficSample, type Metric, type Severity,
} from "./anomaly.ts";
