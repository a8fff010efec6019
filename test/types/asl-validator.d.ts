declare module 'asl-validator' {
  interface AslValidationResult {
    isValid: boolean;
    errors: Array<{ 'Error code'?: string; Message?: string; [key: string]: unknown }>;
  }
  /** Validates an Amazon States Language definition. */
  export default function aslValidator(
    definition: unknown,
    options?: Record<string, unknown>,
  ): AslValidationResult;
}
