@rem Gradle wrapper launcher for the DoTCoM Android demo (Windows).
@rem If gradle\wrapper\gradle-wrapper.jar is missing, create it once with an installed Gradle:
@rem     gradle wrapper --gradle-version 8.11.1
@if "%DEBUG%"=="" @echo off
setlocal

set APP_HOME=%~dp0
set WRAPPER_JAR=%APP_HOME%gradle\wrapper\gradle-wrapper.jar

if not exist "%WRAPPER_JAR%" (
    echo error: %WRAPPER_JAR% is missing. 1>&2
    echo Create it once with an installed Gradle: gradle wrapper --gradle-version 8.11.1 1>&2
    exit /b 1
)

if defined JAVA_HOME (
    set JAVACMD=%JAVA_HOME%\bin\java.exe
) else (
    set JAVACMD=java.exe
)

"%JAVACMD%" %DEFAULT_JVM_OPTS% %JAVA_OPTS% %GRADLE_OPTS% "-Dorg.gradle.appname=%~n0" -classpath "%WRAPPER_JAR%" org.gradle.wrapper.GradleWrapperMain %*
exit /b %ERRORLEVEL%
