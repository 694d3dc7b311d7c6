/** The package version (package.json's; a unit test keeps them equal). */
export const VERSION = '1.0.0';
