@rem Gradle wrapper launcher for the DoTCoM Android demo (Windows).
@rem Runs the Gradle pinned in gradle\wrapper\gradle-wrapper.properties through
@rem gradle\wrapper\gradle-wrapper.jar (Gradle's own wrapper; see README.md).
@if "%DEBUG%"=="" @echo off
setlocal

set "APP_HOME=%~dp0"
set "WRAPPER_JAR=%APP_HOME%gradle\wrapper\gradle-wrapper.jar"

if not exist "%WRAPPER_JAR%" (
    echo error: "%WRAPPER_JAR%" is missing ^(it is part of the repository^). 1>&2
    echo Restore it with git, or regenerate it: gradle wrapper --gradle-version 8.11.1 1>&2
    exit /b 1
)

@rem Quoted assignments: JAVA_HOME often contains parentheses ("Program Files (x86)").
set "JAVACMD=java.exe"
if defined JAVA_HOME set "JAVACMD=%JAVA_HOME%\bin\java.exe"

"%JAVACMD%" %DEFAULT_JVM_OPTS% %JAVA_OPTS% %GRADLE_OPTS% "-Dorg.gradle.appname=%~n0" -classpath "%WRAPPER_JAR%" org.gradle.wrapper.GradleWrapperMain %*
exit /b %ERRORLEVEL%
